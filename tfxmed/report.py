"""`python -m tfxmed.report`: kept so the older form works; the command lives in `tfxmed.commands.report`."""

import sys

from tfxmed.commands.report import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m tfxmed.report"))
