"""`python -m tfxmed.demo`: kept so the older form works; the command lives in `tfxmed.commands.demo`."""

import sys

from tfxmed.commands.demo import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m tfxmed.demo"))
