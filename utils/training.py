"""The one training loop of the kit's shapes classifiers (``"shapes"`` and ``"shapes_small"``).

:func:`train_shapes_model` generates the procedural training images, normalizes them, trains a
:class:`utils.models.ShapesNet` with AdamW + OneCycleLR and an augmentation, measures the held-out accuracy and
writes ``<out>/<name>.safetensors`` and ``<out>/<name>.json``. The two training scripts are its settings:

* ``python -m utils.train_bundled`` -- the bundled model: default widths, normalization fitted on its own training
  images, a monitoring set, :func:`augment_per_quarter`;
* ``python -m utils.train_second`` -- the second model: narrower, another seed range, the bundled model's
  normalization, :func:`flip_rotate_shift` on the whole batch.

Reproducible from the seed on one machine with the same thread count: the model's initialization comes from torch's
global RNG (seeded by :func:`utils.device.seed_everything`), the data from ``make_shapes``' own seeds, the batch
order and the augmentation from one ``torch.Generator`` seeded with ``seed``.
"""
from __future__ import annotations

import json
import math
import platform
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .data import SHAPE_CLASSES, make_shapes
from .device import seed_everything
from .image import jitter, normalize, random_shift, uint8_to_float
from .models import SHAPES_MODELS, ModelCard, ShapesNet, sha256_file

__all__ = ["EVAL_SEED", "EVAL_N", "flip_rotate_shift", "augment_per_quarter", "accuracy", "train_classifier",
           "train_shapes_model"]

#: The held-out set every shapes model is measured on once, after training: ``make_shapes(EVAL_N, EVAL_SEED)``
#: (``benchmarks/bundled_accuracy.py`` uses it too). Training and monitoring seeds are disjoint from it.
EVAL_SEED = 12345
EVAL_N = 2000

#: An augmentation: ``(x, generator) -> x'``, both ``(N, 3, H, W)``, drawing its randomness from ``generator``.
Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def flip_rotate_shift(x: torch.Tensor, g: torch.Generator, quarter_turns: int | None = None,
                      max_shift: int = 4) -> torch.Tensor:
    """Flip a batch ``(N, C, H, W)`` left-right with probability 1/2, rotate it by ``quarter_turns`` x 90 degrees
    (drawn from 0..3 when ``None``) and shift it circularly by up to ``max_shift`` pixels; one choice for the batch.

    Every shapes class is invariant to all three. Draws from ``g`` in this order: the flip (``torch.rand``), the
    quarter turns (``torch.randint``, only when ``None``), the shift (:func:`utils.image.random_shift`, whose first
    offset moves the rows here and second the columns)."""
    if torch.rand((), generator=g) < 0.5:
        x = x.flip(-1)
    k = int(torch.randint(0, 4, (), generator=g)) if quarter_turns is None else int(quarter_turns)
    rows, cols = random_shift(max_shift, g)
    return jitter(torch.rot90(x, k=k, dims=(-2, -1)), cols, rows)


def augment_per_quarter(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """:func:`flip_rotate_shift` per quarter of a batch ``(N, C, H, W)``: the batch is split at random (one
    ``torch.randperm``) into four groups, group ``i`` is rotated by ``i`` quarter turns and gets its own flip and
    shift. Returns ``(N, C, H, W)``, each image at its place."""
    out = torch.empty_like(x)
    for quarter_turns, idx in enumerate(torch.randperm(x.shape[0], generator=g).chunk(4)):
        out[idx] = flip_rotate_shift(x[idx], g, quarter_turns=quarter_turns)
    return out


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    """Share of ``x`` ``(N, 3, H, W)`` (normalized) that ``model``, put in eval mode, classifies as ``y`` ``(N,)``.

    Runs ``batch`` images at a time, each batch in channels-last memory (as in training)."""
    model.eval()
    preds = [model(x[i:i + batch].contiguous(memory_format=torch.channels_last)).argmax(1)
             for i in range(0, x.shape[0], batch)]
    return float((torch.cat(preds) == y).float().mean())


def train_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, augment: Augmentation, epochs: int,
                     batch_size: int, lr: float, weight_decay: float, seed: int,
                     monitor: tuple[torch.Tensor, torch.Tensor] | None = None, progress: bool = True,
                     start_time: float | None = None) -> list[dict]:
    """Train ``model`` (in place) on normalized images ``x`` ``(N, 3, H, W)`` with labels ``y`` ``(N,)``.

    Cross-entropy, AdamW (``weight_decay`` on the weights of more than one dimension, none on biases and batch-norm
    parameters) and a OneCycleLR schedule peaking at ``lr`` after 20 % of the steps. Every epoch draws a fresh
    order (``torch.randperm``) and every batch of ``batch_size`` is augmented (``augment``), both from one
    ``torch.Generator`` seeded with ``seed``; batches go through the model in channels-last memory.

    Args:
        monitor: optional ``(x, y)`` measured with :func:`accuracy` after every epoch (never used to choose anything).
        progress: show a tqdm bar per epoch.
        start_time: ``time.perf_counter()`` of the start, for the elapsed time printed after every epoch.
    Returns:
        One dict per epoch: ``epoch``, ``loss`` (mean over the epoch's images), ``train_acc`` and, with ``monitor``,
        ``monitor_acc`` (unrounded).
    """
    start_time = time.perf_counter() if start_time is None else start_time
    n = x.shape[0]
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    steps_per_epoch = math.ceil(n / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch,
                                                pct_start=0.2)
    g = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=g)
        total_loss, correct, seen = 0.0, 0, 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{epochs}", leave=False, mininterval=2.0,
                   disable=not progress)
        for step in bar:
            idx = perm[step * batch_size:(step + 1) * batch_size]
            xb = augment(x[idx], g).contiguous(memory_format=torch.channels_last)
            yb = y[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += float(loss.detach()) * idx.numel()
            correct += int((logits.argmax(1) == yb).sum())
            seen += idx.numel()
            bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}", refresh=False)
        record = {"epoch": epoch + 1, "loss": total_loss / seen, "train_acc": correct / seen}
        if monitor is not None:
            record["monitor_acc"] = accuracy(model, *monitor)
        history.append(record)
        shown = f"  monitor acc {record['monitor_acc']:.4f}" if monitor is not None else ""
        print(f"epoch {epoch + 1}/{epochs}: loss {record['loss']:.4f}  train acc {record['train_acc']:.4f}{shown}  "
              f"({time.perf_counter() - start_time:.0f}s)", flush=True)
    return history


def _labelled_shapes(n: int, seed: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``make_shapes(n, seed, size)`` as float32 ``(n, 3, size, size)`` pixels in [0, 1] and int64 labels ``(n,)``."""
    images, labels, _ = make_shapes(n, seed=seed, size=size)
    return uint8_to_float(images), torch.from_numpy(labels)


def train_shapes_model(name: str, *, seed: int, epochs: int, n_train: int, out: str | Path, batch_size: int,
                       lr: float, weight_decay: float, threads: int, train_seed_base: int, augment: Augmentation,
                       augmentation: str, widths: tuple[int, ...] | None = None, card: ModelCard | None = None,
                       input_size: int = 64, monitor_seed_base: int | None = None, progress: bool = True) -> dict:
    """Train a :class:`ShapesNet` and write ``<out>/<name>.safetensors`` and ``<out>/<name>.json``; return the JSON.

    Args:
        name: the model's name (a key of :data:`utils.models.SHAPES_MODELS`, which gives its training command).
        seed: seeds torch's global RNG (the initialization; :func:`seed_everything`) and the loop's generator.
        epochs, n_train, batch_size, lr, weight_decay: as in :func:`train_classifier`; ``n_train`` images from
            ``make_shapes(n_train, seed=train_seed_base + seed)``.
        out: the folder written to (created if missing).
        threads: torch's intra-op threads for the run.
        augment, augmentation: the augmentation and its description for the JSON.
        widths: the ShapesNet's stage widths (default :attr:`ShapesNet.widths`).
        card: the normalization to use (its mean, std and input size); ``None`` fits it on the training images
            (per-channel mean and std of the [0, 1] pixels, rounded to 4 decimals) at ``input_size``.
        monitor_seed_base: when given, ``make_shapes(1000, seed=monitor_seed_base + seed)`` is measured after every
            epoch (recorded in the history, never used to choose anything).
        progress: show a tqdm bar per epoch.
    Returns:
        The metadata written to ``<name>.json``: architecture, sha256 of the weights, classes, normalization, input
        size, training settings and history, held-out accuracy on ``make_shapes(EVAL_N, seed=EVAL_SEED)``.
    """
    t0 = time.perf_counter()
    torch.set_num_threads(threads)
    seed_everything(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    size = card.input_size if card is not None else int(input_size)

    print(f"generating {n_train} training images (seed {train_seed_base + seed}) ...", flush=True)
    xtr, ytr = _labelled_shapes(n_train, train_seed_base + seed, size)
    monitor = None if monitor_seed_base is None else _labelled_shapes(1000, monitor_seed_base + seed, size)
    if card is None:
        card = ModelCard(name=name, classes=tuple(SHAPE_CLASSES), input_size=size, source="fitted for training",
                         mean=tuple(round(float(v), 4) for v in xtr.mean(dim=(0, 2, 3))),
                         std=tuple(round(float(v), 4) for v in xtr.std(dim=(0, 2, 3))))
    xtr = normalize(xtr, card)
    if monitor is not None:
        monitor = (normalize(monitor[0], card), monitor[1])
    print(f"data ready in {time.perf_counter() - t0:.1f}s; mean={card.mean} std={card.std}", flush=True)

    model = ShapesNet(num_classes=len(SHAPE_CLASSES), widths=widths).to(memory_format=torch.channels_last)
    history = train_classifier(model, xtr, ytr, augment=augment, epochs=epochs, batch_size=batch_size, lr=lr,
                               weight_decay=weight_decay, seed=seed, monitor=monitor, progress=progress,
                               start_time=t0)
    train_time = time.perf_counter() - t0

    model = model.to(memory_format=torch.contiguous_format).eval()
    xev, yev = _labelled_shapes(EVAL_N, EVAL_SEED, size)
    acc = accuracy(model, normalize(xev, card), yev)
    print(f"held-out accuracy on make_shapes({EVAL_N}, seed={EVAL_SEED}): {acc:.4f}", flush=True)

    from safetensors.torch import save_file

    weights_path = out / f"{name}.safetensors"
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(weights_path), metadata={"format": "pt", "model": "ShapesNet"})
    meta = {
        "name": name,
        "architecture": "ShapesNet",
        "widths": list(model.widths),
        "weights_file": weights_path.name,
        "sha256": sha256_file(weights_path),
        "classes": list(SHAPE_CLASSES),
        "mean": list(card.mean),
        "std": list(card.std),
        "input_size": size,
        "num_parameters": int(sum(p.numel() for p in model.parameters())),
        "training": {
            "command": f"{SHAPES_MODELS[name]} --seed {seed} --epochs {epochs} --n-train {n_train}",
            "seed": seed,
            "epochs": epochs,
            "n_train": n_train,
            "train_data_seed": train_seed_base + seed,
            "batch_size": batch_size,
            "optimizer": f"AdamW(lr={lr}, weight_decay={weight_decay}) + OneCycleLR",
            "augmentation": augmentation,
            "threads": threads,
            "train_time_s": round(train_time, 1),
            "history": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in h.items()} for h in history],
            "torch": torch.__version__,
            "machine": platform.machine(),
        },
        "heldout": {"data": f"make_shapes({EVAL_N}, seed={EVAL_SEED})", "accuracy": round(acc, 4)},
    }
    with open(out / f"{name}.json", "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2)
        fh.write("\n")
    print(f"wrote {weights_path} ({weights_path.stat().st_size / 1e6:.2f} MB) and {out / (name + '.json')}; "
          f"train time {train_time:.0f}s", flush=True)
    return meta
