"""`python -m elasticio_sailor ...`: see cli.py."""

import sys

from .cli import main

sys.exit(main())
