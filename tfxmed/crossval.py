"""`python -m tfxmed.crossval`: kept so the older form works; the command lives in `tfxmed.commands.crossval`."""

import sys

from tfxmed.commands.crossval import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m tfxmed.crossval"))
