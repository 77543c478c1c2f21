"""`python -m tfxmed.evaluate`: kept so the older form works; the command lives in `tfxmed.commands.evaluate`."""

import sys

from tfxmed.commands.evaluate import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m tfxmed.evaluate"))
