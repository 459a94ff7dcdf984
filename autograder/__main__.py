"""``python -m autograder``: see :mod:`autograder.cli`."""
import os
import sys

from autograder import cli

try:
    code = cli.main()
except BrokenPipeError:  # the output went to a pager or `head` that stopped reading: not an error
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(0)
if cli.fast_exit:
    # A batch command closed everything it opened: skip the interpreter's teardown of torch's modules (half a
    # second of CPU, measured) by ending here.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
