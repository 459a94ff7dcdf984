"""``python -m autograder``: see :mod:`autograder.cli`."""
import os
import sys


def _command(argv: list[str]) -> str | None:
    """The sub-command named on the command line (options before it skipped), without importing the CLI."""
    args = iter(argv)
    for arg in args:
        if arg == "--questions":
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


if _command(sys.argv[1:]) == "grade" and not {"-h", "--help"} & set(sys.argv):
    # Before anything of the course is read: re-exec in the fork server's conditions and fork the server from here,
    # with torch imported once for both processes (see autograder.grade.prefork).
    from autograder.grade import prefork

    prefork.start()

from autograder import cli  # noqa: E402

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
