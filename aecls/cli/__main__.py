"""`python -m aecls.cli ...` = `aecls ...`."""

import sys

from aecls.cli.main import main

sys.exit(main())
