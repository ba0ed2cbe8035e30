"""`python -m bot`."""

import sys

from bot.cli import main

if __name__ == "__main__":  # scan workers (bot.scan.sandbox) may import the main module
    sys.exit(main())
