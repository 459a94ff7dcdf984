"""``python -m autograder merge OUT_1 ... OUT_N --out OUT``: join the outputs of ``grade --shard K/N`` runs.

Each shard's ``grades.sqlite`` records its shard (``K/N``), the submissions its last run covered and whether that
run finished (:mod:`autograder.grade.store`). The merge checks that the inputs are the N finished shards of one split,
copies their submissions into one store, and writes ``grades.csv`` and the class report with the writers ``grade``
uses (:func:`autograder.grade.batch.write_outputs`), so the result is byte for byte what one unsharded run writes. Feedback
pages were written by the shard that graded the student (they need the student's output tensors, which the store
does not keep) and are copied as they are.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from autograder.grade import report
from autograder.grade.batch import BatchError, lock_out, write_outputs, _out_error
from autograder.grade.store import COLUMNS, Store

STORE_NAME = "grades.sqlite"


@dataclass
class _Shard:
    folder: Path
    index: int
    count: int
    keys: list[tuple[str, str]]
    rows: dict[tuple[str, str], dict[str, list[tuple]]]   # key -> table -> rows (COLUMNS order)


@dataclass
class MergeSummary:
    out_dir: Path
    shards: int = 0
    submissions: int = 0
    students: int = 0
    warnings: list[str] = field(default_factory=list)
    table: str = ""


def _read_shard(folder: Path) -> _Shard:
    path = folder / STORE_NAME
    if not folder.is_dir():
        raise BatchError(f"{folder}: no such folder (give the --out folders of the grade --shard runs)")
    if not path.is_file():
        raise BatchError(f"{folder}: no {STORE_NAME} (not the --out folder of a grade run, or that run never "
                         "started)")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
    except sqlite3.Error as exc:
        raise BatchError(f"{path}: cannot open the store ({exc})") from None
    try:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        keys = [tuple(k) for k in db.execute("SELECT student, assignment FROM batch ORDER BY student, assignment")]
        rows: dict[tuple[str, str], dict[str, list[tuple]]] = {}
        for table, cols in COLUMNS.items():
            order = {"submissions": "", "questions": " ORDER BY position", "cases": " ORDER BY question, position"}
            for row in db.execute(f"SELECT {', '.join(cols)} FROM {table}{order[table]}"):
                rows.setdefault((row[0], row[1]), {t: [] for t in COLUMNS})[table].append(tuple(row))
    except sqlite3.DatabaseError as exc:
        why = "it was written by a grader without shard support; rerun grade" if "no such table" in str(exc) \
            else "corrupt or not a grades store"
        raise BatchError(f"{path}: cannot read the store ({exc}): {why}") from None
    finally:
        db.close()
    try:
        index, count = (int(x) for x in meta["shard"].split("/"))
    except (KeyError, ValueError):
        raise BatchError(f"{path}: the store records no shard; rerun its grade command") from None
    if meta.get("finished") != "1":
        raise BatchError(f"{folder}: shard {index}/{count} did not finish (killed or still running); rerun the same "
                         "grade command, it resumes where it stopped")
    return _Shard(folder, index, count, keys, rows)


def _check_split(shards: list[_Shard]) -> None:
    counts = sorted({s.count for s in shards})
    if len(counts) > 1:
        listing = ", ".join(f"{s.folder} is {s.index}/{s.count}" for s in shards)
        raise BatchError(f"the inputs come from different splits ({listing}); merge the shards of one split")
    n = counts[0]
    seen: dict[int, Path] = {}
    for s in shards:
        if s.index in seen:
            raise BatchError(f"shard {s.index}/{n} given twice: {seen[s.index]} and {s.folder}")
        seen[s.index] = s.folder
    missing = [f"{k}/{n}" for k in range(n) if k not in seen]
    if missing:
        raise BatchError(f"missing shard(s) {', '.join(missing)} of {n}; grade them (--shard K/{n}) and merge all "
                         f"{n}")


def _grades(rows: dict[str, list[tuple]]) -> tuple:
    """What a submission's grade is, for comparing two shards' copies (not when or how it was run)."""
    return tuple(rows["questions"]), tuple(rows["cases"]), tuple(r[4:6] for r in rows["submissions"])


def merge(inputs: list[str | Path], out: str | Path) -> MergeSummary:
    """Merge the ``--out`` folders of the N shards of one ``grade --shard K/N`` split into ``out``."""
    out = Path(out)
    folders = [Path(p) for p in inputs]
    if not folders:
        raise BatchError("nothing to merge: give the --out folders of the grade --shard runs")
    out_real = os.path.realpath(out)
    for f in folders:
        if os.path.realpath(f) == out_real:
            raise BatchError(f"--out {out} is one of the inputs; merge into a new folder")
    real = [os.path.realpath(f) for f in folders]
    dup = next((f for f, r in zip(folders, real) if real.count(r) > 1), None)
    if dup is not None:
        raise BatchError(f"{dup} is given twice")
    shards = sorted((_read_shard(f) for f in folders), key=lambda s: s.index)
    _check_split(shards)

    owner: dict[tuple[str, str], _Shard] = {}
    fingerprints: dict[str, tuple[str, Path]] = {}
    for s in shards:
        for key in s.keys:
            rows = s.rows.get(key)
            if rows is None or not rows["submissions"]:
                continue  # a grader failure in that shard: not stored, not in its grades.csv either
            first = owner.get(key)
            if first is not None:
                if _grades(first.rows[key]) != _grades(rows):
                    raise BatchError(f"{key[0]}/{key[1]} was graded by two shards with different results "
                                     f"({first.folder} and {s.folder}); were they split from the same "
                                     "submissions folder? Regrade one of them")
                continue
            fp = rows["submissions"][0][3]
            other = fingerprints.setdefault(key[1], (fp, s.folder))
            if other[0] != fp:
                raise BatchError(f"{key[1]}: {other[1]} and {s.folder} were graded with different references or "
                                 "limits (fingerprints differ); grade every shard with the same kit and options")
            owner[key] = s
    keys = set(owner) | {k for s in shards for k in s.keys}

    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = lock_out(out)
    except OSError as exc:
        raise _out_error(out, exc) from None
    summary = MergeSummary(out, shards=len(shards), submissions=len(owner),
                           students=len({k[0] for k in owner}))
    try:
        for suffix in ("", "-wal", "-shm"):
            (out / (STORE_NAME + suffix)).unlink(missing_ok=True)
        store = Store(out / STORE_NAME)
        try:
            store.begin_batch(keys, (0, 1))
            with store.db:
                store.db.execute("BEGIN IMMEDIATE")
                for key in sorted(owner):
                    for table in COLUMNS:
                        store.insert_rows(table, owner[key].rows[key][table])
            for key in sorted(owner):
                summary.warnings += _copy_feedback(owner[key].folder, out, *key)
            rows, case_rows = write_outputs(store, out, keys)
            store.finish_batch()
        finally:
            store.close()
    except (OSError, sqlite3.Error) as exc:
        raise _out_error(out, exc) from None
    finally:
        lock.close()
    summary.table = report.summary(rows, case_rows)
    return summary


def _copy_feedback(shard: Path, out: Path, student: str, assignment: str) -> list[str]:
    """Copy one submission's feedback page and images from the shard that graded it."""
    src, dst = shard / "feedback" / student, out / "feedback" / student
    page = src / f"{assignment}.html"
    if not page.is_file():
        return [f"{student}/{assignment}: no feedback page in {shard} (deleted?); regrade that shard to write it"]
    dst.mkdir(parents=True, exist_ok=True)
    for old in dst.glob(f"{assignment}__*.png"):
        old.unlink()
    for png in sorted(src.glob(f"{assignment}__*.png")):
        shutil.copyfile(png, dst / png.name)
    tmp = dst / f"{assignment}.html.tmp"
    shutil.copyfile(page, tmp)
    tmp.replace(dst / f"{assignment}.html")
    return []
