"""`python -m tfxmed.auto`: kept beside `python -m tfxmed auto`; the command lives in `tfxmed.commands.auto`."""

import sys

from tfxmed.commands.auto import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m tfxmed.auto"))
