"""Check a GPU machine in one command: references on CUDA, the solution notebooks on CUDA, GPU timings.

    python benchmarks/gpu_check.py [--skip-notebooks] [--budget 300]

1. ``pytest -m cuda``: every reference reproduces its committed case files on the GPU (TF32 off, the kit's
   precision policy: ``utils.device.exact_float32``);
2. every solution notebook executed on the GPU (they pick CUDA through ``utils.device.get_device``), with its time;
3. GPU timings printed side by side with the CPU: the two shipped models (``benchmarks/model_speed.py``) and the
   metric-learning losses against pytorch-metric-learning (``benchmarks/metric_losses_vs_pml.py``).

Without CUDA it says so and exits 0, having run nothing. Exit status 1 when a check failed.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(title: str, cmd: list[str], timeout: float) -> bool:
    print(f"\n== {title}\n$ {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=ROOT, timeout=timeout)
        ok = done.returncode == 0
    except subprocess.TimeoutExpired:
        print(f"(stopped after {timeout:.0f} s)")
        ok = False
    print(f"-- {title}: {'ok' if ok else 'FAILED'} in {time.perf_counter() - t0:.1f} s", flush=True)
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-notebooks", action="store_true")
    ap.add_argument("--budget", type=float, default=300.0, help="seconds for the whole check (default 300)")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device on this machine; nothing to check (the cuda test group skips too).")
        return 0
    start = time.perf_counter()
    print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    left = lambda: max(30.0, args.budget - (time.perf_counter() - start))  # noqa: E731
    py = sys.executable
    ok = _run("references on CUDA (pytest -m cuda)", [py, "-m", "pytest", "-q", "-m", "cuda", "tests/test_cuda.py",
                                                      "-p", "no:randomly", "--durations=5"], left())
    if not args.skip_notebooks:
        notebooks = sorted(ROOT.glob("solutions/*/*.ipynb"))
        ok &= _run(f"{len(notebooks)} solution notebooks on CUDA (nbval)",
                   [py, "-m", "pytest", "-q", "--nbval-lax", *map(str, notebooks), "--durations=0"], left())
    ok &= _run("models: forward / forward+backward on CUDA", [py, "benchmarks/model_speed.py", "--device", "cuda",
                                                             "--batch", "8"], left())
    for device in ("cpu", "cuda"):
        ok &= _run(f"metric losses vs pytorch-metric-learning on {device}",
                   [py, "benchmarks/metric_losses_vs_pml.py", "--device", device, "--no-pml-memory"], left())
    print(f"\ngpu_check {'passed' if ok else 'FAILED'} in {time.perf_counter() - start:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
