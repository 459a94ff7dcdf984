"""The kit's two embedded models side by side: load time, forward and forward+backward at their native sizes.

    python benchmarks/model_speed.py [--threads 1] [--repeats 20] [--device cpu]

Both models are timed in the same run, interleaved, so the ratios hold on a busy machine even where the absolute
times do not. Forward+backward is what every technique of the course does per step (gradient to the image).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from utils.models import load_model, model_card


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(fn, device, repeats: int) -> list[float]:
    fn()                                                   # warm-up (allocations, lazy init)
    out = []
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    names = ("shapes", "efficientnet_lite0")

    load = {n: [] for n in names}
    for _ in range(3):
        for n in names:
            t = time.perf_counter()
            load_model(n, device)
            load[n].append(time.perf_counter() - t)
    models = {n: load_model(n, device) for n in names}
    inputs = {n: torch.randn(args.batch, 3, model_card(n).input_size, model_card(n).input_size, device=device)
              for n in names}

    def forward(n):
        with torch.no_grad():
            models[n](inputs[n])

    def forward_backward(n):
        x = inputs[n].clone().requires_grad_(True)
        models[n](x)[:, 0].sum().backward()

    rows = {}
    for label, fn in (("forward", forward), ("forward+backward", forward_backward)):
        times = {n: [] for n in names}
        for _ in range(args.repeats):                      # interleaved: both see the same machine load
            for n in names:
                times[n] += _time(lambda: fn(n), device, 1)
        rows[label] = {n: statistics.median(times[n]) for n in names}
    rows["load (incl. sha256)"] = {n: statistics.median(load[n]) for n in names}

    print(f"device {device}, {args.threads} thread(s), batch {args.batch}; medians of {args.repeats} "
          f"interleaved runs")
    print(f"{'':22s}{'shapes (64 px)':>16s}{'efficientnet_lite0 (224 px)':>30s}{'ratio':>8s}")
    for label, r in rows.items():
        print(f"{label:22s}{1000 * r['shapes']:13.1f} ms{1000 * r['efficientnet_lite0']:27.1f} ms"
              f"{r['efficientnet_lite0'] / r['shapes']:7.1f}x")


if __name__ == "__main__":
    main()
