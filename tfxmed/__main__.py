"""`python -m tfxmed <command>`: see `tfxmed.commands`."""

import sys

from tfxmed.commands import main

sys.exit(main())
