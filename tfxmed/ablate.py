"""`python -m tfxmed.ablate`: kept so the older form works; the command lives in `tfxmed.commands.ablate`."""

import sys

from tfxmed.commands.ablate import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m tfxmed.ablate"))
