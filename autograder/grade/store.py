"""SQLite store of grades (``OUT_DIR/grades.sqlite``): written as each submission finishes, so a batch resumes.

A submission is stored in one transaction (old rows replaced), keyed by (student, assignment) with the SHA-256 of
the notebook and a fingerprint of the assignment's spec + references + limits; a rerun skips submissions whose
notebook and fingerprint are unchanged.

Two more tables describe the last ``grade`` run into this store, for ``python -m autograder merge``: ``meta``
(``shard`` = ``K/N``, 0-based, ``0/1`` when unsharded; ``finished`` = 1 once the run wrote its outputs) and
``batch`` (the (student, assignment) pairs that run covered, which are what its ``grades.csv`` shows).
"""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from autograder.core.verdicts import Result

SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    student TEXT NOT NULL, assignment TEXT NOT NULL, notebook_sha256 TEXT NOT NULL, fingerprint TEXT NOT NULL,
    points REAL NOT NULL, max_points REAL NOT NULL, isolation TEXT NOT NULL, graded_at REAL NOT NULL,
    PRIMARY KEY (student, assignment));
CREATE TABLE IF NOT EXISTS questions (
    student TEXT NOT NULL, assignment TEXT NOT NULL, question TEXT NOT NULL, position INTEGER NOT NULL,
    points REAL NOT NULL, max_points REAL NOT NULL, verdict TEXT NOT NULL, message TEXT NOT NULL,
    PRIMARY KEY (student, assignment, question));
CREATE TABLE IF NOT EXISTS cases (
    student TEXT NOT NULL, assignment TEXT NOT NULL, question TEXT NOT NULL, name TEXT NOT NULL,
    position INTEGER NOT NULL, public INTEGER NOT NULL, points REAL NOT NULL, max_points REAL NOT NULL,
    verdict TEXT NOT NULL, message TEXT NOT NULL,
    PRIMARY KEY (student, assignment, question, name));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batch (student TEXT NOT NULL, assignment TEXT NOT NULL, PRIMARY KEY (student, assignment));
"""

#: The columns of each table, in order (``merge`` copies rows between stores with them).
COLUMNS = {
    "submissions": ("student", "assignment", "notebook_sha256", "fingerprint", "points", "max_points", "isolation",
                    "graded_at"),
    "questions": ("student", "assignment", "question", "position", "points", "max_points", "verdict", "message"),
    "cases": ("student", "assignment", "question", "name", "position", "public", "points", "max_points", "verdict",
              "message"),
}


def _text(value: str) -> str:
    """Text SQLite can store: characters UTF-8 cannot encode (lone surrogates) replaced."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(value, str) else value


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        # A commit then syncs nothing (the checkpoints do): a killed grader loses no committed submission, a power
        # cut can lose the last few, which the next run regrades (the store is what says what is done).
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def is_current(self, student: str, assignment: str, notebook_sha256: str, fingerprint: str) -> bool:
        row = self.db.execute("SELECT notebook_sha256, fingerprint FROM submissions WHERE student=? AND "
                              "assignment=?", (_text(student), _text(assignment))).fetchone()
        return row == (notebook_sha256, fingerprint)

    def save(self, student: str, assignment: str, notebook_sha256: str, fingerprint: str,
             results: list[Result], isolation: str) -> None:
        """Replace the submission's rows atomically."""
        points = round(sum(r.points for r in results), 6)
        max_points = round(sum(r.max_points for r in results), 6)
        key = (_text(student), _text(assignment))
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for table in ("submissions", "questions", "cases"):
                self.db.execute(f"DELETE FROM {table} WHERE student=? AND assignment=?", key)
            self.db.execute("INSERT INTO submissions VALUES (?,?,?,?,?,?,?,?)",
                            (*key, notebook_sha256, fingerprint, points, max_points, isolation, time.time()))
            for i, r in enumerate(results):
                self.db.execute("INSERT INTO questions VALUES (?,?,?,?,?,?,?,?)",
                                (*key, r.question, i, r.points, r.max_points, r.verdict, _text(r.message)))
                for j, c in enumerate(r.cases):
                    self.db.execute("INSERT INTO cases VALUES (?,?,?,?,?,?,?,?,?,?)",
                                    (*key, r.question, c.case, j, int(c.public), c.points, c.max_points, c.verdict,
                                     _text(c.message)))

    def begin_batch(self, keys: set[tuple[str, str]], shard: tuple[int, int] = (0, 1)) -> None:
        """Record the run that starts: its shard (``K/N``, 0-based) and the submissions it covers; not finished."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM batch")
            self.db.executemany("INSERT INTO batch VALUES (?,?)",
                                sorted((_text(s), _text(a)) for s, a in keys))
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?,?)",
                                [("shard", f"{shard[0]}/{shard[1]}"), ("finished", "0")])

    def finish_batch(self) -> None:
        """The run wrote its outputs (``merge`` refuses a store whose last run did not finish)."""
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('finished', '1')")

    def insert_rows(self, table: str, rows: list[tuple]) -> None:
        """Raw rows in :data:`COLUMNS` order (``merge`` copies a shard's submissions with them)."""
        marks = ",".join("?" * len(COLUMNS[table]))
        self.db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)

    def _rows(self, sql: str, keys: set[tuple[str, str]] | None) -> list[dict]:
        cur = self.db.execute(sql)
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, row)) for row in cur.fetchall()]
        return [r for r in rows if keys is None or (r["student"], r["assignment"]) in keys]

    def question_rows(self, keys: set[tuple[str, str]] | None = None) -> list[dict]:
        """One row per student x question, sorted by student, assignment, question order."""
        return self._rows("SELECT student, assignment, question, points, max_points, verdict, message "
                          "FROM questions ORDER BY student, assignment, position", keys)

    def case_rows(self, keys: set[tuple[str, str]] | None = None) -> list[dict]:
        """One row per student x case, sorted by student, assignment, question, case order."""
        return self._rows("SELECT student, assignment, question, name, public, points, max_points, verdict, "
                          "message FROM cases ORDER BY student, assignment, question, position", keys)
