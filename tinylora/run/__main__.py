"""`python -m tinylora.run` is the `tinylora` command (it lives here, beside the reference: the
reference in tinylora/ never imports the commands' plumbing)."""

import sys

from tinylora.run.cli import main

sys.exit(main())
