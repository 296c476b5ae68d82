"""`python -m vtok_cli ...` runs the `vtok` console script."""

import sys

from .main import main

sys.exit(main())
