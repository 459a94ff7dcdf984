"""Train the bundled classifier (:class:`utils.models.ShapesNet`) on the procedural shapes data set.

    python -m utils.train_bundled [--seed 0] [--epochs 6] [--n-train 15000] [--out utils/weights]

Reproducible from ``--seed`` (same machine, same thread count). The training images come from
``make_shapes(n_train, seed=1_000_000 + seed)`` and the progress-monitoring images from
``make_shapes(1000, seed=2_000_000 + seed)``; both seed ranges are disjoint from the evaluation seed 12345 that the
final held-out accuracy (and ``benchmarks/bundled_accuracy.py``) uses on 2000 images. Nothing is selected on the
held-out set: it is measured once, after training. Augmentation: random flips and 90-degree rotations (every class
is invariant to them) and small circular shifts.

Writes ``<out>/shapes.safetensors`` (the state dict) and ``<out>/shapes.json`` (classes, normalization, input
size, architecture, the safetensors file's sha256, the training settings, held-out accuracy and train time).
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .data import SHAPE_CLASSES, make_shapes
from .device import seed_everything
from .models import ShapesNet, sha256_file

EVAL_SEED = 12345
EVAL_N = 2000
TRAIN_SEED_BASE = 1_000_000
MONITOR_SEED_BASE = 2_000_000
INPUT_SIZE = 64


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [0, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random flips, 90-degree rotations and small circular shifts, batched (one choice per quarter-batch)."""
    n = x.shape[0]
    out = torch.empty_like(x)
    perm = torch.randperm(n, generator=g)
    groups = perm.chunk(4)
    for gi, idx in enumerate(groups):
        xi = x[idx]
        if torch.rand((), generator=g) < 0.5:
            xi = xi.flip(-1)
        xi = torch.rot90(xi, k=gi, dims=(-2, -1))
        sy, sx = torch.randint(-4, 5, (2,), generator=g).tolist()
        xi = torch.roll(xi, shifts=(sy, sx), dims=(-2, -1))
        out[idx] = xi
    return out


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> tuple[float, np.ndarray]:
    """Accuracy and predictions of ``model`` (eval mode) on normalized ``x``."""
    model.eval()
    preds = []
    for i in range(0, x.shape[0], batch):
        xb = x[i:i + batch].contiguous(memory_format=torch.channels_last)
        preds.append(model(xb).argmax(1))
    p = torch.cat(preds)
    return float((p == y).float().mean()), p.numpy()


def train(seed: int = 0, epochs: int = 6, n_train: int = 15000, out: str | Path = "utils/weights",
          batch_size: int = 128, lr: float = 3e-3, weight_decay: float = 5e-4, threads: int = 2) -> dict:
    t0 = time.perf_counter()
    torch.set_num_threads(threads)
    seed_everything(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    print(f"generating {n_train} training images (seed {TRAIN_SEED_BASE + seed}) ...", flush=True)
    xtr_u8, ytr_np, _ = make_shapes(n_train, seed=TRAIN_SEED_BASE + seed, size=INPUT_SIZE)
    xmon_u8, ymon_np, _ = make_shapes(1000, seed=MONITOR_SEED_BASE + seed, size=INPUT_SIZE)
    xtr = _to_tensor(xtr_u8)
    mean = tuple(round(float(v), 4) for v in xtr.mean(dim=(0, 2, 3)))
    std = tuple(round(float(v), 4) for v in xtr.std(dim=(0, 2, 3)))
    mean_t = torch.tensor(mean).view(1, 3, 1, 1)
    std_t = torch.tensor(std).view(1, 3, 1, 1)
    xtr = (xtr - mean_t) / std_t
    ytr = torch.from_numpy(ytr_np)
    xmon = (_to_tensor(xmon_u8) - mean_t) / std_t
    ymon = torch.from_numpy(ymon_np)
    print(f"data ready in {time.perf_counter() - t0:.1f}s; mean={mean} std={std}", flush=True)

    model = ShapesNet(num_classes=len(SHAPE_CLASSES)).to(memory_format=torch.channels_last)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim == 1 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    steps_per_epoch = math.ceil(n_train / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch,
                                                pct_start=0.2)
    g = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n_train, generator=g)
        tot_loss, tot_correct, seen = 0.0, 0, 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{epochs}", leave=False, mininterval=2.0)
        for step in bar:
            idx = perm[step * batch_size:(step + 1) * batch_size]
            xb = _augment(xtr[idx], g).contiguous(memory_format=torch.channels_last)
            yb = ytr[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot_loss += float(loss.detach()) * idx.numel()
            tot_correct += int((logits.argmax(1) == yb).sum())
            seen += idx.numel()
            bar.set_postfix(loss=f"{tot_loss / seen:.3f}", acc=f"{tot_correct / seen:.3f}", refresh=False)
        mon_acc, _ = evaluate(model, xmon, ymon)
        history.append({"epoch": epoch + 1, "loss": tot_loss / seen, "train_acc": tot_correct / seen,
                        "monitor_acc": mon_acc})
        print(f"epoch {epoch + 1}/{epochs}: loss {tot_loss / seen:.4f}  train acc {tot_correct / seen:.4f}  "
              f"monitor acc {mon_acc:.4f}  ({time.perf_counter() - t0:.0f}s)", flush=True)
    train_time = time.perf_counter() - t0

    model = model.to(memory_format=torch.contiguous_format).eval()
    xev_u8, yev_np, _ = make_shapes(EVAL_N, seed=EVAL_SEED, size=INPUT_SIZE)
    xev = (_to_tensor(xev_u8) - mean_t) / std_t
    acc, _ = evaluate(model, xev, torch.from_numpy(yev_np))
    print(f"held-out accuracy on make_shapes({EVAL_N}, seed={EVAL_SEED}): {acc:.4f}", flush=True)

    from safetensors.torch import save_file

    weights_path = out / "shapes.safetensors"
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(weights_path), metadata={"format": "pt", "model": "ShapesNet"})
    meta = {
        "name": "shapes",
        "architecture": "ShapesNet",
        "widths": list(model.widths),
        "weights_file": weights_path.name,
        "sha256": sha256_file(weights_path),
        "classes": list(SHAPE_CLASSES),
        "mean": list(mean),
        "std": list(std),
        "input_size": INPUT_SIZE,
        "num_parameters": int(sum(p.numel() for p in model.parameters())),
        "training": {
            "command": f"python -m utils.train_bundled --seed {seed} --epochs {epochs} --n-train {n_train}",
            "seed": seed,
            "epochs": epochs,
            "n_train": n_train,
            "train_data_seed": TRAIN_SEED_BASE + seed,
            "batch_size": batch_size,
            "optimizer": f"AdamW(lr={lr}, weight_decay={weight_decay}) + OneCycleLR",
            "augmentation": "flips, 90-degree rotations, circular shifts <= 4 px",
            "threads": threads,
            "train_time_s": round(train_time, 1),
            "history": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in h.items()} for h in history],
            "torch": torch.__version__,
            "machine": platform.machine(),
        },
        "heldout": {"data": f"make_shapes({EVAL_N}, seed={EVAL_SEED})", "accuracy": round(acc, 4)},
    }
    with open(out / "shapes.json", "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2)
        fh.write("\n")
    print(f"wrote {weights_path} ({weights_path.stat().st_size / 1e6:.2f} MB) and {out / 'shapes.json'}; "
          f"train time {train_time:.0f}s", flush=True)
    return meta


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--n-train", type=int, default=15000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "weights"))
    a = p.parse_args(argv)
    train(seed=a.seed, epochs=a.epochs, n_train=a.n_train, out=a.out, batch_size=a.batch_size, lr=a.lr,
          threads=a.threads)


if __name__ == "__main__":
    main()
