"""`python -m tfxmed.export`: kept so the older form works; the command lives in `tfxmed.commands.export`."""

import sys

from tfxmed.commands.export import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m tfxmed.export"))
