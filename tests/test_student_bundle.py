"""The student bundle works for a student: every command of its README, run as written in a fresh virtual
environment made inside the bundle, works offline; nothing it installs solves the assignments; it leaks nothing.

Slow (a real ``pip install`` of the pinned torch pair, about a minute): it is what a student does first. The
venv takes about 6 GB (torch's CUDA build with its NVIDIA libraries and triton); the test says so up front when the
disk cannot hold it instead of failing deep inside pip.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from autograder.core import registry
from autograder.course.release import INSTRUCTOR_ONLY_PACKAGES, build_student_bundle, leak_check

ROOT = Path(__file__).resolve().parent.parent

#: Free space the fresh venv needs: ~6.1 GB installed, measured, plus pip's unpacked wheels.
VENV_NEEDS_BYTES = 8 * 10**9


def readme_commands(readme: str) -> list[str]:
    """The shell commands of the README's first ``bash`` block (comments dropped)."""
    block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_bundle_readme_and_install_files_are_the_students(tmp_path):
    bundle = build_student_bundle(ROOT, tmp_path / "student")
    readme = (bundle / "README.md").read_text()
    assert "demo" not in readme and "solutions/" not in readme and "nbgrader autograde" not in readme
    assert len(readme_commands(readme)) == 3
    for name in ("pyproject.toml", "environment.yml"):
        text = (bundle / name).read_text()
        assert not any(pkg in text for pkg in INSTRUCTOR_ONLY_PACKAGES), name
    assert leak_check(bundle, ROOT) == []
    # the check has teeth: an install file that names such a package is reported
    (bundle / "environment.yml").write_text((bundle / "environment.yml").read_text() + "  - pytorch-metric-learning\n")
    assert any("pytorch-metric-learning" in p for p in leak_check(bundle, ROOT))


@pytest.mark.slow
def test_every_readme_command_works_in_a_fresh_venv(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    if free < VENV_NEEDS_BYTES:
        pytest.fail(f"not enough disk for a fresh venv: {free / 1e9:.1f} GB free under {tmp_path}, "
                    f"{VENV_NEEDS_BYTES / 1e9:.0f} GB needed; free some space (old clones, venvs) or point "
                    "pytest's --basetemp at a bigger disk", pytrace=False)
    bundle = build_student_bundle(ROOT, tmp_path / "student")
    setup, lab, validate = readme_commands((bundle / "README.md").read_text())
    try:
        done = subprocess.run(setup, shell=True, cwd=bundle, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        pip_list = subprocess.run([".venv/bin/python", "-m", "pip", "list"], cwd=bundle, capture_output=True,
                                  text=True, check=True).stdout.lower()
        assert not any(pkg in pip_list for pkg in INSTRUCTOR_ONLY_PACKAGES)
        # command 2 starts a server; that its program runs from the venv is what can be checked without a browser
        assert lab.startswith(".venv/bin/jupyter lab ")
        assert subprocess.run([".venv/bin/jupyter", "lab", "--version"], cwd=bundle, capture_output=True,
                              timeout=120).returncode == 0
        # command 3 on the blank notebook names every function still to write
        out = subprocess.run(validate, shell=True, cwd=bundle, capture_output=True, text=True, timeout=600)
        text = out.stdout + out.stderr
        aid = Path(validate.split()[-1]).stem
        for q in registry.get(aid).assignment.questions:
            assert f'check("{q.id}")' in text, (q.id, text[-2000:])
        assert "VALIDATION FAILED" in text
    finally:
        shutil.rmtree(bundle / ".venv", ignore_errors=True)
