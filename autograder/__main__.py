"""``python -m autograder``: see :mod:`autograder.cli`."""
import os
import sys

from autograder.cli import main

try:
    sys.exit(main())
except BrokenPipeError:  # the output went to a pager or `head` that stopped reading: not an error
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(0)
