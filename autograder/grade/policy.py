"""The sandbox policy: every limit and fence a worker runs under, in one place.

A :class:`SandboxPolicy` is built once per batch (from ``grade``'s flags), written into every worker's plan and read
back by the worker, so both ends use the same numbers. The README's "Isolation" section is this file in words.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

#: Seconds one question's cases may take together, on every path (the batch grader's ``--timeout`` default too).
DEFAULT_TIMEOUT = 60.0
DEFAULT_MEMORY_MB = 2048

#: The worker's whole environment (nothing of the grader's is inherited).
WORKER_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "CUDA_VISIBLE_DEVICES": "",
              "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/mpl",
              "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "TQDM_DISABLE": "1"}


class PolicyError(ValueError):
    """A limit that cannot work (zero, negative, not a number)."""


@dataclass(frozen=True)
class SandboxPolicy:
    """What a worker may use and see. Times in seconds, sizes in MB unless the name says bytes."""

    # -- time ---------------------------------------------------------------------------------------------------
    timeout: float = DEFAULT_TIMEOUT        #: one question, all its cases together
    load_timeout: float | None = None       #: loading the notebook's code (None: max(30, 2 x timeout))
    question_slack: float = 10.0            #: how much longer the grader waits for a question before giving up
    startup_timeout: float = 180.0          #: the fork server's start (it imports torch)
    cpu_slack: int = 5                      #: a question's CPU-time limit is timeout + this (RLIMIT_CPU)
    nice: int = 5                           #: student code yields to the worker timing it (and to the grader)
    # -- memory and output --------------------------------------------------------------------------------------
    memory_mb: int = DEFAULT_MEMORY_MB      #: more address space a question may take than its worker holds
    load_memory_factor: int = 2             #: code running at load gets at most this x memory_mb (hard limit)
    max_output_bytes: int = 64 << 20        #: one case's outputs (the worker refuses more)
    max_file_bytes: int = 256 << 20         #: largest file the worker may write (RLIMIT_FSIZE; no core dumps)
    max_processes: int = 32                 #: processes + threads of the worker's private uid (RLIMIT_NPROC)
    result_budget_bytes: int = 128 << 20    #: all outputs of one submission the grader keeps in memory
    # -- what the worker sees -----------------------------------------------------------------------------------
    namespace: bool = True                  #: namespaces (allow-listed file system, no network...) where available
    env: Mapping[str, str] = field(default_factory=lambda: dict(WORKER_ENV))
    #: private, empty, writable folders (tmpfs, size in MB), gone when the worker ends
    private_tmp: Mapping[str, int] = field(default_factory=lambda: {"/tmp": 64, "/var/tmp": 16, "/dev/shm": 64})
    #: system software the worker sees read-only
    system_dirs: tuple[str, ...] = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
    #: single files of /etc the dynamic loader needs
    system_files: tuple[str, ...] = ("/etc/ld.so.cache",)
    #: device nodes bound from the host's /dev
    devices: tuple[str, ...] = ("null", "zero", "full", "random", "urandom")

    def __post_init__(self) -> None:
        bad = [f"{name} must be a positive number (got {value!r})"
               for name, value in (("timeout", self.timeout), ("memory_mb", self.memory_mb),
                                   ("load_timeout", self.load_timeout))
               if value is not None and not (isinstance(value, (int, float)) and value > 0 and value != float("inf"))]
        if bad:
            raise PolicyError("; ".join(bad))
        object.__setattr__(self, "timeout", float(self.timeout))
        object.__setattr__(self, "memory_mb", int(self.memory_mb))
        load = max(30.0, 2 * self.timeout) if self.load_timeout is None else self.load_timeout
        object.__setattr__(self, "load_timeout", float(load))

    @property
    def max_case_payload(self) -> int:
        """Largest frame payload the grader reads for one case (the outputs plus framing room)."""
        return self.max_output_bytes + (1 << 20)

    @property
    def cpu_seconds(self) -> int:
        return int(self.timeout) + self.cpu_slack

    def submission_budget(self, n_questions: int) -> float:
        """Wall-clock seconds one submission may take from the moment its worker starts loading it: the load, then
        every question's time limit plus slack (restarts after a crash included)."""
        return self.load_timeout + n_questions * (self.timeout + 2.0) + self.question_slack

    def to_dict(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, Mapping) else list(v) if isinstance(v, tuple) else v)
                for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SandboxPolicy":
        fields = cls.__dataclass_fields__
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in fields}
        return cls(**kw)
