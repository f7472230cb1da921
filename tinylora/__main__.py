"""`python -m tinylora` is the `tinylora` command."""

import sys

from tinylora.cli import main

sys.exit(main())
