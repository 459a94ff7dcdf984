"""Framing for the pipes between the grader, the worker and the per-question children.

A frame is ``>II`` (JSON length, payload length), then a JSON header, then the payload (safetensors bytes of the
student's outputs, or nothing). Readers cap both lengths, so a hostile process cannot make the grader allocate
without bound; anything malformed (bad JSON, JSON nested too deep, not an object) ends the stream. What a header
*says* is checked by the reader of each channel (:meth:`autograder.grade.session.Session._read_worker`).
"""
from __future__ import annotations

import struct
from json import dumps as _dumps
from json import loads as _loads
from os import read as _read
from os import write as _write
from select import select as _select
from time import monotonic as _monotonic
from typing import Any

# Functions are bound at import, before any student code runs in the worker, so a submission that monkeypatches
# json / os / select at import cannot break the channel that reports its results.

_HEAD = struct.Struct(">II")

# Frame types, worker -> grader, in the order a worker sends them. ``type`` is the header's one required key.
HELLO = "hello"                #: the worker is isolated (``isolation``: what it achieved) and about to load
# (the cell being loaded is not a frame: the worker writes its index into a file, see autograder.grade.worker)
LOADED = "loaded"              #: the notebook's code is loaded (``errors``: cell index -> message)
CASE = "case"                  #: one case's status (``question``, ``case``, ``status``...) + its outputs as payload
MISSING = "missing"            #: the notebook defines no function ``question``
NOT_CALLABLE = "not_callable"  #: ``question`` is a value of type ``kind``, not a function
DONE = "done"                  #: every question ran
FATAL = "fatal"                #: the worker failed outside student code (``message``)
EXIT = "exit"                  #: from the supervisor: the worker process ended (``returncode``)
MAX_JSON = 1 << 20
MAX_PAYLOAD = 256 << 20


class ProtocolError(Exception):
    """A malformed or oversized frame."""


def pack(header: dict[str, Any], payload: bytes = b"") -> bytes:
    data = _dumps(header).encode()
    return _HEAD.pack(len(data), len(payload)) + data + payload


def write_bytes(fd: int, data: bytes) -> None:
    """Write all of ``data`` (packed frames) to ``fd``."""
    view = memoryview(data)
    while view:
        n = _write(fd, view)
        view = view[n:]


def write_frame(fd: int, header: dict[str, Any], payload: bytes = b"") -> None:
    write_bytes(fd, pack(header, payload))


class FrameReader:
    """Incremental reader of frames from a non-blocking-safe fd with deadlines (via select)."""

    def __init__(self, fd: int, max_payload: int = MAX_PAYLOAD):
        self.fd = fd
        self.buf = bytearray()
        self.max_payload = max_payload
        self.eof = False

    def _parse(self):
        if len(self.buf) < _HEAD.size:
            return None
        jlen, plen = _HEAD.unpack_from(self.buf)
        if jlen > MAX_JSON or plen > self.max_payload:
            raise ProtocolError(f"frame too large ({jlen} + {plen} bytes)")
        end = _HEAD.size + jlen + plen
        if len(self.buf) < end:
            return None
        try:
            header = _loads(bytes(self.buf[_HEAD.size:_HEAD.size + jlen]))
        except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested deeper than the C stack allows
            raise ProtocolError(f"bad frame header: {type(exc).__name__}") from None
        if not isinstance(header, dict):
            raise ProtocolError("bad frame header: not an object")
        payload = bytes(self.buf[_HEAD.size + jlen:end])
        del self.buf[:end]
        return header, payload

    def read(self, deadline: float | None):
        """The next frame, or None at EOF; raises TimeoutError past ``deadline`` (a time.monotonic() value)."""
        while True:
            frame = self._parse()
            if frame is not None:
                return frame
            if self.eof:
                if self.buf:
                    raise ProtocolError("stream ended inside a frame")
                return None
            wait = None if deadline is None else max(0.0, deadline - _monotonic())
            ready, _, _ = _select([self.fd], [], [], wait)
            if not ready:
                raise TimeoutError
            chunk = _read(self.fd, 1 << 20)
            if not chunk:
                self.eof = True
            else:
                self.buf += chunk
