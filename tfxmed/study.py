"""`python -m tfxmed.study`: kept beside `python -m tfxmed study`; the command lives in `tfxmed.commands.study`."""

import sys

from tfxmed.commands.study import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m tfxmed.study"))
