"""The worker's side of the result channel: how many writes (grader wake-ups) its frames take, and what it writes
about the cell it is loading (:mod:`autograder.grade.worker`)."""
from __future__ import annotations

import os
import socket
import tempfile
import threading
import time

import pytest
import torch

from autograder.core import casefile
from autograder.core.pipeline import CallSpec
from autograder.grade import protocol, worker
from autograder.grade.policy import SandboxPolicy
from autograder.grade.session import _loading_cell

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the worker forks")


def _case(value: float) -> casefile.CaseFile:
    entries, tensors = casefile.encode_args({"x": torch.full((2,), value)})
    return casefile.CaseFile({"args": entries, "seed": 0}, tensors)


def slow_on_nine(x):
    if float(x[0]) == 9.0:
        time.sleep(1.0)
    return x + 1


def _question(n: int) -> dict:
    return {"id": "slow_on_nine", "call": CallSpec("slow_on_nine").to_dict(),
            "cases": [{"name": f"c{i}"} for i in range(n)]}


def _records(sock: socket.socket) -> list[tuple[float, list[dict]]]:
    """Every record (one per write) until the other end closes: ``(arrival time, the frames in it)``."""
    out = []
    while True:
        data = sock.recv(1 << 20)
        if not data:
            return out
        reader = protocol.FrameReader(-1)
        reader.buf += data
        frames = []
        while (frame := reader._parse()) is not None:
            frames.append(frame[0])
        out.append((time.monotonic(), frames))


def _run(values: list[float]) -> tuple[float, list[tuple[float, list[dict]]]]:
    """Run one question over cases with these inputs in this process (as the worker does), its frames written to
    a SOCK_SEQPACKET socket, which keeps each write a record of its own."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    t0 = time.monotonic()

    def work():
        try:
            worker.run_question(theirs.fileno(), {"slow_on_nine": slow_on_nine}, _question(len(values)),
                                [_case(v) for v in values], SandboxPolicy(timeout=20))
            worker._flush(theirs.fileno())  # what the worker's next frame (or "done") would take along
        finally:
            theirs.close()

    thread = threading.Thread(target=work)
    thread.start()
    try:
        return t0, _records(ours)
    finally:
        thread.join()
        ours.close()


def test_case_frames_that_come_close_together_travel_in_one_write():
    _, records = _run([1.0, 2.0, 3.0, 4.0, 5.0])
    frames = [f for _, fs in records for f in fs]
    assert [(f["type"], f["case"], f["status"]) for f in frames] == [("case", f"c{i}", "ok") for i in range(5)]
    assert len(records) <= 2, [len(fs) for _, fs in records]  # five cases, not five wake-ups


def test_no_case_result_waits_longer_than_the_flush_window():
    t0, records = _run([1.0, 9.0, 3.0])
    arrived = {f["case"]: t for t, fs in records for f in fs}
    # c0 does not wait for the slow c1 (1 s): it goes when the outbox's window is up
    assert arrived["c0"] - t0 < 0.6, arrived
    assert arrived["c1"] - arrived["c0"] > 0.5, arrived


def test_the_worker_writes_the_cell_it_loads_where_the_grader_reads_it():
    with tempfile.TemporaryFile() as progress:
        assert _loading_cell(progress.fileno()) is None  # nothing written yet: no cell is named
        on_cell = worker._progress_writer(progress.fileno())
        for index in (3, 12, 7):
            on_cell(index)
        assert _loading_cell(progress.fileno()) == 7  # the last one, over longer numbers written before
        os.pwrite(progress.fileno(), b"\x00garbage", 0)
        assert _loading_cell(progress.fileno()) is None
        os.pwrite(progress.fileno(), b"-5" + b" " * 30, 0)
        assert _loading_cell(progress.fileno()) is None
