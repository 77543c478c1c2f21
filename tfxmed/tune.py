"""`python -m tfxmed.tune`: kept so the older form works; the command lives in `tfxmed.commands.tune`."""

import sys

from tfxmed.commands.tune import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m tfxmed.tune"))
