"""`python -m tinylora` is the `tinylora` command."""

import sys

from tinylora.run.cli import main

sys.exit(main())
