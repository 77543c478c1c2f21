"""`python -m tfxmed.train`: kept so the older form works; the command lives in `tfxmed.commands.train`."""

import sys

from tfxmed.commands.train import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m tfxmed.train"))
