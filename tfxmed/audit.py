"""`python -m tfxmed.audit`: kept beside `python -m tfxmed audit`; the command lives in `tfxmed.commands.audit`."""

import sys

from tfxmed.commands.audit import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m tfxmed.audit"))
