"""`python -m tfxmed.compare`: kept beside `python -m tfxmed compare` (the command: `tfxmed.commands.compare`)."""

import sys

from tfxmed.commands.compare import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m tfxmed.compare"))
