"""`python -m tfxmed.ensemble`: kept beside `python -m tfxmed ensemble` (the command: `tfxmed.commands.ensemble`)."""

import sys

from tfxmed.commands.ensemble import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m tfxmed.ensemble"))
