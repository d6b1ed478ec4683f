"""`python -m dtnlab`."""

import sys

from dtnlab.cli import main

sys.exit(main())
