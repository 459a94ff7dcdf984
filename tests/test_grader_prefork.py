"""How ``python -m autograder grade`` starts (autograder.grade.prefork): the re-exec with ``PYTHONHASHSEED=0``, the
environment that travels beside it, and a forked fork server whose memory never held the instructor's environment.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autograder.grade import prefork
from autograder.grade.policy import WORKER_ENV

REPO = Path(__file__).resolve().parents[1]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux") or not hasattr(os, "memfd_create"),
                                reason="the forked fork server needs Linux (fork, memfd_create)")


def test_the_environment_survives_packing_byte_for_byte():
    env = {b"A": b"1", b"EMPTY": b"", b"EQUALS": b"x=y==z", b"LATIN1": "caf\xe9".encode("latin-1"),
           b"NEWLINE": b"two\nlines", b"SPACES": b"  padded  "}
    assert prefork.unpack_env(prefork.pack_env(env)) == env
    assert prefork.unpack_env(prefork.pack_env({})) == {}


def test_the_grader_starts_like_the_server_would_plus_where_its_packages_are():
    """The policy's worker environment (what an exec'd server starts with), the user's package locations, and not
    one other variable of the user's: not their thread settings, not their locale, not their tokens."""
    env = {b"PATH": b"/opt/bin", b"HOME": b"/home/i", b"LANG": b"de_DE.ISO-8859-1", b"LC_ALL": b"C",
           b"PYTHONPATH": b"/src", b"PYTHONWARNINGS": b"error", b"PYTHONOPTIMIZE": b"2", b"OMP_NUM_THREADS": b"8",
           b"LD_PRELOAD": b"/x.so", b"CONDA_CHANNEL_ALIAS": b"https://t/tok", b"AWS_SECRET_ACCESS_KEY": b"k"}
    started = prefork.startup_env(env)
    policy = {k.encode(): v.encode() for k, v in WORKER_ENV.items() if k != "HOME"}
    assert started == {**policy, b"HOME": b"/home/i", b"PYTHONPATH": b"/src"}
    assert started[b"PYTHONHASHSEED"] == b"0" and started[b"OMP_NUM_THREADS"] == b"1"
    # never the policy's HOME=/tmp: site would run a user site folder there that anyone can write to
    assert b"HOME" not in prefork.startup_env({b"PATH": b"/bin"})


PLAIN = ["-m", "autograder", "grade", "x"]


@pytest.mark.parametrize("argv, env, forks", [
    (PLAIN, {}, True),
    (["-O", *PLAIN], {}, False),                       # would strip the students' asserts
    (PLAIN, {"PYTHONOPTIMIZE": "1"}, False),           # the same, from the environment
    (["-W", "error", *PLAIN], {}, False),              # would turn the students' warnings into errors
    (PLAIN, {"PYTHONWARNINGS": "error"}, False),
    (PLAIN, {"PYTHONDEVMODE": "1"}, False),
    (["-X", "dev", *PLAIN], {}, False),
    (["-E", *PLAIN], {}, False),                       # PYTHONHASHSEED would be ignored
    (["-m", "cProfile", *PLAIN], {}, False),           # a wrapper would run twice
])
def test_only_a_plain_python_m_autograder_forks_its_server(argv, env, forks):
    """``plain_start`` run where ``sys.argv``, ``sys.orig_argv`` and ``sys.flags`` are what ``python <argv>`` gives
    (a stand-in package whose ``__main__`` asks it)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run([sys.executable, *argv], cwd=REPO / "tests" / "fixtures" / "plain_start_probe",
                          env={**clean, **env}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[0] == str(forks and sys.platform.startswith("linux"))  # (cProfile prints after)


#: Run in a fresh interpreter: start() re-execs it with the same command line, forks the server and restores the
#: environment; then it reports what the grader and the forked server look like.
PROBE = textwrap.dedent("""
    import json, os, sys
    from autograder.grade import prefork
    prefork.plain_start = lambda: True  # the probe is `python -c`, not `python -m autograder`
    prefork.start()
    pid = prefork._PREFORKED[0] if prefork._PREFORKED else None
    found = None
    if pid is not None:  # search the forked server's writable memory (and its environment block) for the secret
        needle, found = os.environ["KIT_SECRET"].encode(), 0
        with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
            for line in maps:
                fields = line.split()
                if not fields[1].startswith("rw"):
                    continue
                lo, hi = (int(v, 16) for v in fields[0].split("-"))
                try:
                    mem.seek(lo)
                    found += mem.read(hi - lo).count(needle)
                except OSError:
                    pass
        with open(f"/proc/{pid}/environ", "rb") as f:
            found += f.read().count(needle)
    import io, tqdm  # imported by torch under the startup environment's TQDM_DISABLE=1: the grader's own again
    bar = tqdm.tqdm(total=1, file=io.StringIO())
    print(json.dumps({"pid": os.getpid(), "server": pid, "found": found, "seed_random": sys.flags.hash_randomization,
                      "hash": hash("kit"), "env": dict(os.environ), "bar_disabled": bar.disable}))
""")


@linux_only
def test_start_reexecs_with_seed_0_forks_a_server_without_the_secret_and_restores_the_environment():
    secret = "kit-prefork-" + "5b1e0c"  # never whole in this process's own strings before the child gets it
    env = {**os.environ, "PYTHONPATH": str(REPO), "KIT_SECRET": secret, "KIT_ODD": "a=b\nc"}
    env.pop("TQDM_DISABLE", None)
    env.pop("PYTHONHASHSEED", None)
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout)
    seeded = int(subprocess.run([sys.executable, "-c", "print(hash('kit'))"], env={"PYTHONHASHSEED": "0"},
                                capture_output=True, text=True, check=True).stdout)
    assert seen["server"] is not None, "no server was forked"
    assert seen["found"] == 0, "the forked server's memory holds the grader's environment"
    assert (seen["seed_random"], seen["hash"]) == (0, seeded)
    assert seen["env"] == env  # every variable back, nothing added (no PYTHONHASHSEED, no file descriptor name)
    assert seen["bar_disabled"] is False  # the command line's progress bar shows


@linux_only
def test_under_python_E_nothing_is_forked_and_the_environment_is_intact():
    """``python -E`` ignores ``PYTHONHASHSEED``: a server forked from it would give the workers a random seed. Even
    when the first check is bypassed, the re-exec'd process forks none (the server is exec'd later, as from
    ``grade_folder``)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "KIT_SECRET": "x"}
    env.pop("PYTHONHASHSEED", None)
    probe = f"import sys; sys.path.insert(0, {str(REPO)!r})\n" + PROBE
    done = subprocess.run([sys.executable, "-E", "-c", probe], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout)
    assert seen["server"] is None
    assert seen["env"] == env
