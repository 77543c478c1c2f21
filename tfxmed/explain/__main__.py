"""`python -m tfxmed.explain`: kept so the older form works; the command lives in `tfxmed.commands.explain`."""

import sys

from tfxmed.commands.explain import main

sys.exit(main(prog="python -m tfxmed.explain"))
