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

REPO = Path(__file__).resolve().parents[1]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux") or not hasattr(os, "memfd_create"),
                                reason="the forked fork server needs Linux (fork, memfd_create)")


def test_the_environment_survives_packing_byte_for_byte():
    env = {b"A": b"1", b"EMPTY": b"", b"EQUALS": b"x=y==z", b"LATIN1": "caf\xe9".encode("latin-1"),
           b"NEWLINE": b"two\nlines", b"SPACES": b"  padded  "}
    assert prefork.unpack_env(prefork.pack_env(env)) == env
    assert prefork.unpack_env(prefork.pack_env({})) == {}


def test_the_startup_environment_keeps_where_software_is_and_nothing_else():
    env = {b"PATH": b"/usr/bin", b"HOME": b"/home/i", b"LANG": b"C.UTF-8", b"LC_ALL": b"C", b"PYTHONPATH": b"/src",
           b"LD_LIBRARY_PATH": b"/opt/lib", b"CUDA_VISIBLE_DEVICES": b"0", b"OMP_NUM_THREADS": b"1",
           b"AWS_SECRET_ACCESS_KEY": b"k", b"GITHUB_TOKEN": b"t", b"HF_TOKEN": b"h", b"MY_PATH": b"p",
           b"XPYTHONPATH": b"x"}
    kept = prefork.startup_env(env)
    assert set(kept) == {b"PATH", b"HOME", b"LANG", b"LC_ALL", b"PYTHONPATH", b"LD_LIBRARY_PATH",
                         b"CUDA_VISIBLE_DEVICES", b"OMP_NUM_THREADS"}
    assert all(kept[k] == env[k] for k in kept)


#: Run in a fresh interpreter: start() re-execs it with the same command line, forks the server and restores the
#: environment; then it reports what the grader and the forked server look like.
PROBE = textwrap.dedent("""
    import json, os, sys
    from autograder.grade import prefork
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
    print(json.dumps({"pid": os.getpid(), "server": pid, "found": found, "seed_random": sys.flags.hash_randomization,
                      "hash": hash("kit"), "env": dict(os.environ)}))
""")


@linux_only
def test_start_reexecs_with_seed_0_forks_a_server_without_the_secret_and_restores_the_environment():
    secret = "kit-prefork-" + "5b1e0c"  # never whole in this process's own strings before the child gets it
    env = {**os.environ, "PYTHONPATH": str(REPO), "KIT_SECRET": secret, "KIT_ODD": "a=b\nc"}
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


@linux_only
def test_under_python_E_nothing_is_forked_and_the_environment_is_intact():
    """``python -E`` ignores ``PYTHONHASHSEED``: a server forked from it would give the workers a random seed, so
    none is forked (the server is exec'd later, as from ``grade_folder``)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "KIT_SECRET": "x"}
    env.pop("PYTHONHASHSEED", None)
    probe = f"import sys; sys.path.insert(0, {str(REPO)!r})\n" + PROBE
    done = subprocess.run([sys.executable, "-E", "-c", probe], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout)
    assert seen["server"] is None
    assert seen["env"] == env
