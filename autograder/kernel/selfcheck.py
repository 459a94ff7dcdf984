"""The student's self-check: ``check("compute_saliency_maps")`` in a notebook.

Runs the PUBLIC cases of a graded function in the notebook's own process and prints one line per case (verdict
and message). Never reads hidden files. When a public case fails it raises :class:`SelfCheckFailed` after the
table, so the cell fails and nbgrader's Validate button (or "Restart and Run All") names every function that is
not done yet. ``nbgrader autograde`` runs the grade cells with ``strict=False`` (see
:mod:`autograder.course.nbgrader_preprocessors`), where the hidden tests decide the points. Hidden cases run when the
notebook is graded.
"""
from __future__ import annotations

from typing import Callable


def _table(rows: list[tuple[str, str, str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = []
    for i, (a, b, c) in enumerate(rows):
        lines.append(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}".rstrip())
        if i == 0:
            lines.append(f"{'-' * widths[0]}  {'-' * widths[1]}  {'-' * 7}")
    return "\n".join(lines)


class SelfCheckFailed(AssertionError):
    """A graded function does not pass its public cases yet (the table above the error says why)."""


def check(name: str, fn: Callable | None = None, *, strict: bool = True) -> None:
    """Run the public cases of the graded function ``name`` and print a table of verdicts.

    ``fn`` defaults to ``name`` looked up in the caller's globals (the notebook), then in ``__main__``.
    With ``strict`` (the default) a failing public case raises :class:`SelfCheckFailed` after the table."""
    failure = None
    try:
        from autograder.kernel import inprocess
        from autograder.core import registry
        from autograder.core import verdicts as V

        try:
            entry, question = registry.find_question(name)
        except KeyError:
            print(f"check: there is no graded function named {name!r} (check the spelling)")
            return None
        fn = inprocess.find_function(name, fn)
        if fn is None:
            print(f"check: `{name}` is not defined yet: run the cell with `def {name}(...)` first")
            failure = f"`{name}` is not defined yet"
            return None
        if not callable(fn):
            print(f"check: `{name}` is a {type(fn).__name__}, not a function")
            failure = f"`{name}` is not a function"
            return None
        results = inprocess.run_cases(fn, entry, question, public_only=True, silence_stdout=False)
        rows = [("case", "verdict", "message")] + [(r.case, r.verdict, r.message) for r in results]
        passed = sum(r.verdict == V.PASSED for r in results)
        print(f"{name}: {passed}/{len(results)} public case{'s' * (len(results) != 1)} passed")
        print(_table(rows))
        if results and passed == len(results):
            print("Hidden cases (other seeds, sizes and shapes) run when your notebook is graded.")
        elif results:
            first = next(r for r in results if r.verdict != V.PASSED)
            failure = (f"`{name}` passes {passed} of {len(results)} public cases "
                       f"({first.verdict}: see the table above)")
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - a self-check must never break the notebook by itself
        print(f"check: could not run the checks ({type(exc).__name__}: {exc})")
    finally:
        if failure and strict:
            raise SelfCheckFailed(failure) from None
    return None
