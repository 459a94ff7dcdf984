"""A second, independently trained shapes classifier, for the transfer experiment of assignment 05.

Szegedy et al. (2013) found that adversarial examples made for one network often fool *another* network trained
separately (other initialization, other training images, even another architecture). To measure that on the
offline default we need a second model. It is a narrower :class:`utils.models.ShapesNet` (:data:`SMALL_WIDTHS`:
three quarters of the bundled model's channels per stage, about 220 k parameters instead of 396 k), trained from
another seed on a disjoint set of procedural images, but fed exactly the same normalized input as the bundled
model (it reuses the bundled model card's mean and std), so one image tensor can be shown to both.

    python -m utils.train_second [--seed 1] [--epochs 8] [--n-train 15000] [--threads 2]

takes about 100 s on two CPU cores (99.75 % on the held-out ``make_shapes(2000, seed=12345)``) and writes
``utils/weights/shapes_small.safetensors`` (0.9 MB) and ``utils/weights/shapes_small.json`` (architecture,
normalization, sha256, settings, held-out accuracy). ``utils.models.load_model("shapes_small")`` loads it, checking
the checksum.
Same seed and thread count give the same training curve; the weights' last bits can differ between runs (CPU
convolution kernels are not bit-deterministic), so the checksum is of the committed file.
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
from torch import nn

from .data import SHAPE_CLASSES, make_shapes
from .device import seed_everything
from .models import WEIGHTS_DIR, ShapesNet, model_card, sha256_file

__all__ = ["SMALL_WIDTHS", "train"]

#: Channel widths of the second model's five conv stages (the bundled model uses 16, 32, 64, 128, 256).
SMALL_WIDTHS: tuple[int, ...] = (12, 24, 48, 96, 192)
NAME = "shapes_small"
#: Training images come from ``make_shapes(n_train, seed=TRAIN_SEED_BASE + seed)``: a seed range disjoint from the
#: bundled model's training (1_000_000 + s), monitoring (2_000_000 + s) and evaluation (12345) seeds.
TRAIN_SEED_BASE = 3_000_000
EVAL_SEED = 12345
EVAL_N = 2000


def _to_input(images: np.ndarray, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    return (x - mean) / std


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Flip, rotate by a multiple of 90 degrees and shift (circularly, <= 4 px) a batch; every class is invariant."""
    if torch.rand((), generator=g) < 0.5:
        x = x.flip(-1)
    k = int(torch.randint(0, 4, (), generator=g))
    sy, sx = torch.randint(-4, 5, (2,), generator=g).tolist()
    return torch.roll(torch.rot90(x, k=k, dims=(-2, -1)), shifts=(sy, sx), dims=(-2, -1))


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    model.eval()
    preds = torch.cat([model(x[i:i + batch]).argmax(1) for i in range(0, x.shape[0], batch)])
    return float((preds == y).float().mean())


def train(seed: int = 1, epochs: int = 8, n_train: int = 15000, out: str | Path = WEIGHTS_DIR,
          batch_size: int = 128, lr: float = 3e-3, weight_decay: float = 5e-4, threads: int = 2) -> dict:
    """Train the second model and write ``shapes_small.safetensors`` / ``shapes_small.json`` into ``out``.

    Reproducible from ``seed`` on one machine with the same thread count. Returns the metadata written."""
    t0 = time.perf_counter()
    torch.set_num_threads(threads)
    seed_everything(seed)
    card = model_card("shapes")
    mean = torch.tensor(card.mean).view(1, 3, 1, 1)
    std = torch.tensor(card.std).view(1, 3, 1, 1)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    images, labels, _ = make_shapes(n_train, seed=TRAIN_SEED_BASE + seed, size=card.input_size)
    xtr, ytr = _to_input(images, mean, std), torch.from_numpy(labels)
    model = ShapesNet(num_classes=len(SHAPE_CLASSES), widths=SMALL_WIDTHS).to(memory_format=torch.channels_last)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    steps = math.ceil(n_train / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, epochs=epochs, steps_per_epoch=steps, pct_start=0.2)
    g = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n_train, generator=g)
        total, correct, seen = 0.0, 0, 0
        for step in range(steps):
            idx = perm[step * batch_size:(step + 1) * batch_size]
            logits = model(_augment(xtr[idx], g).contiguous(memory_format=torch.channels_last))
            loss = F.cross_entropy(logits, ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * idx.numel()
            correct += int((logits.argmax(1) == ytr[idx]).sum())
            seen += idx.numel()
        history.append({"epoch": epoch + 1, "loss": round(total / seen, 4), "train_acc": round(correct / seen, 4)})
        print(f"epoch {epoch + 1}/{epochs}: loss {total / seen:.4f} train acc {correct / seen:.4f} "
              f"({time.perf_counter() - t0:.0f}s)", flush=True)
    train_time = time.perf_counter() - t0

    model = model.to(memory_format=torch.contiguous_format).eval()
    ev_images, ev_labels, _ = make_shapes(EVAL_N, seed=EVAL_SEED, size=card.input_size)
    acc = _accuracy(model, _to_input(ev_images, mean, std), torch.from_numpy(ev_labels))
    print(f"held-out accuracy on make_shapes({EVAL_N}, seed={EVAL_SEED}): {acc:.4f}", flush=True)

    from safetensors.torch import save_file

    path = out / f"{NAME}.safetensors"
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(path),
              metadata={"format": "pt", "model": "ShapesNet"})
    meta = {
        "name": NAME,
        "architecture": "ShapesNet",
        "widths": list(SMALL_WIDTHS),
        "weights_file": path.name,
        "sha256": sha256_file(path),
        "classes": list(SHAPE_CLASSES),
        "mean": list(card.mean),
        "std": list(card.std),
        "input_size": card.input_size,
        "num_parameters": int(sum(p.numel() for p in model.parameters())),
        "training": {
            "command": f"python -m utils.train_second --seed {seed} --epochs {epochs} --n-train {n_train}",
            "seed": seed, "epochs": epochs, "n_train": n_train, "train_data_seed": TRAIN_SEED_BASE + seed,
            "batch_size": batch_size, "optimizer": f"AdamW(lr={lr}, weight_decay={weight_decay}) + OneCycleLR",
            "augmentation": "flips, 90-degree rotations, circular shifts <= 4 px",
            "threads": threads, "train_time_s": round(train_time, 1), "history": history,
            "torch": torch.__version__, "machine": platform.machine(),
        },
        "heldout": {"data": f"make_shapes({EVAL_N}, seed={EVAL_SEED})", "accuracy": round(acc, 4)},
    }
    with open(out / f"{NAME}.json", "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2)
        fh.write("\n")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB); train time {train_time:.0f}s", flush=True)
    return meta



def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--n-train", type=int, default=15000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(WEIGHTS_DIR))
    a = p.parse_args(argv)
    train(seed=a.seed, epochs=a.epochs, n_train=a.n_train, out=a.out, threads=a.threads)


if __name__ == "__main__":
    main()
