"""Accuracy of the bundled classifier on fresh procedural data (never used in training).

    python benchmarks/bundled_accuracy.py [--n 2000] [--seed 12345] [--device cpu]

Prints the overall accuracy, the accuracy per class, and for the worst class the distribution of its predictions
(its row of the confusion matrix). The training script uses other seeds (see utils/train_bundled.py).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.data import SHAPE_CLASSES, make_shapes  # noqa: E402
from utils.image import preprocess  # noqa: E402
from utils.models import load_model, model_card  # noqa: E402


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--device", default=None, help="default: utils.device.get_device()")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)

    t0 = time.perf_counter()
    images, labels, _ = make_shapes(a.n, seed=a.seed)
    t_data = time.perf_counter() - t0
    model = load_model("shapes", device=a.device)
    dev = next(model.parameters()).device
    card = model_card("shapes")
    t0 = time.perf_counter()
    preds = []
    with torch.no_grad():
        for i in range(0, a.n, 500):
            preds.append(model(preprocess(images[i:i + 500], card, device=dev)).argmax(1).cpu())
    pred = torch.cat(preds).numpy()
    t_eval = time.perf_counter() - t0

    k = len(SHAPE_CLASSES)
    conf = np.zeros((k, k), dtype=np.int64)
    np.add.at(conf, (labels, pred), 1)
    acc = float(np.trace(conf) / conf.sum())
    per_class = conf.diagonal() / np.maximum(conf.sum(1), 1)
    print(f"bundled model 'shapes' on make_shapes({a.n}, seed={a.seed}), device {dev}")
    print(f"overall accuracy: {acc:.4f}  ({np.trace(conf)}/{conf.sum()})   "
          f"[data {t_data:.1f}s, inference {t_eval:.1f}s]")
    print("per class:")
    width = max(len(c) for c in SHAPE_CLASSES)
    for c, name in enumerate(SHAPE_CLASSES):
        print(f"  {name:<{width}}  {per_class[c]:.4f}  ({conf[c, c]}/{conf[c].sum()})")
    worst = int(np.argmin(per_class))
    row = conf[worst]
    parts = ", ".join(f"{SHAPE_CLASSES[j]}: {row[j]}" for j in np.argsort(-row) if row[j] > 0)
    print(f"worst class: {SHAPE_CLASSES[worst]} ({per_class[worst]:.4f}); predicted as -> {parts}")
    return acc


if __name__ == "__main__":
    main()
