"""`python -m cutmix_bench`; guarded, as worker processes (spawn, forkserver) re-import the main module."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
