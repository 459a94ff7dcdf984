"""How well the assignment-05 reference fools the bundled classifier, measured over many (image, target) pairs.

    python benchmarks/fooling_success.py [--pairs 60] [--seed 2024] [--device cpu]

Prints four tables (no timings):

1. targeted fooling (``make_fooling_image``, learning rate 1, at most 100 steps) on ``--pairs`` procedural images,
   each with a random target class other than the model's prediction, plus every shipped photo: success rate,
   median and max relative L2 perturbation (pixel space, ``||dx|| / ||x||``), median and max largest pixel change
   in 0-255 units, median and max number of steps;
2. the same for untargeted fooling (``make_untargeted_fooling_image``);
3. unrecognizable images (``make_unrecognizable_image``, confidence 0.996) for every class, from a flat image of
   one random colour and from Gaussian noise: the confidence reached by the bundled model, the distance from the
   start and the second model's confidence on the same image;
4. transfer to a second, independently trained model (``utils.train_second``): the share of fooling images the
   second model also puts in the target class, and the share whose prediction it changes at all, for the minimal
   fooling images of table 1, for high-confidence ones (pushed on to p >= 0.99 on the bundled model) and for the
   minimal ones pushed on by 5 to 80 extra steps.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.data import PHOTOS, SHAPE_CLASSES, load_photo, make_shapes  # noqa: E402
from utils.image import preprocess, valid_range  # noqa: E402
from utils.models import load_model, model_card  # noqa: E402
from utils.reference.fooling import (  # noqa: E402
    fooling_step,
    make_fooling_image,
    make_unrecognizable_image,
    make_untargeted_fooling_image,
)


def count_steps(X, out, step_fn, done, max_steps=100):
    """Replay the reference's steps one by one to count them (the trajectory is the same to the last bit)."""
    x = X.clone()
    for k in range(max_steps + 1):
        if done(x):
            assert torch.allclose(x, out, atol=1e-5), "replay diverged from the reference"
            return k
        x = step_fn(x)
    raise AssertionError("replay did not finish")


def perturbation(X, out, mean, std):
    """Relative L2 in pixel space ``||dx|| / ||x||`` (x in [0, 1]) and the largest pixel change in 0-255 units."""
    d = (out - X) * std
    return float(d.norm() / (X * std + mean).norm()), float(d.abs().max() * 255)


def summary(name, rows):
    ok = [r for r in rows if r["ok"]]
    rel = [r["rel"] for r in ok]
    pix = [r["pix"] for r in ok]
    steps = [r["steps"] for r in ok]
    print(f"{name:34s} {len(ok):3d}/{len(rows):<3d} {100 * len(ok) / len(rows):6.1f}%  "
          f"{statistics.median(rel):8.4f} {max(rel):8.4f}  {statistics.median(pix):7.1f} {max(pix):7.1f}  "
          f"{statistics.median(steps):5.1f} {max(steps):5d}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=60)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    model = load_model("shapes", dev)
    second = load_model("shapes_small", dev)
    card = model_card("shapes")
    lo, hi = valid_range(card, dev)
    bounds = (lo, hi)
    std = torch.tensor(card.std, device=dev).view(1, 3, 1, 1)
    mean = torch.tensor(card.mean, device=dev).view(1, 3, 1, 1)
    g = torch.Generator().manual_seed(a.seed)

    images, labels, _ = make_shapes(a.pairs, seed=a.seed)
    X_all = preprocess(images, card, dev)
    photos = preprocess([load_photo(n, 64) for n in PHOTOS], card, dev)
    sources = [("shapes", X_all[i:i + 1]) for i in range(a.pairs)] + \
              [(f"photo:{n}", photos[i:i + 1]) for i, n in enumerate(PHOTOS)]

    def predict(m, x):
        with torch.no_grad():
            return int(m(x).argmax(1))

    targeted, untargeted = {"shapes": [], "photos": []}, {"shapes": [], "photos": []}
    fooled_pairs = []
    for src, X in sources:
        kind = "shapes" if src == "shapes" else "photos"
        pred = predict(model, X)
        t = int(torch.randint(0, len(SHAPE_CLASSES) - 1, (1,), generator=g))
        t = t + (t >= pred)  # uniform over the other classes
        try:
            out = make_fooling_image(X, t, model, learning_rate=1.0, max_steps=100, bounds=bounds)
            steps = count_steps(X, out, lambda x: fooling_step(x, t, model, 1.0, bounds),
                                lambda x: predict(model, x) == t)
            rel, pix = perturbation(X, out, mean, std)
            ok = predict(model, out) == t and bool(((out >= lo - 1e-6) & (out <= hi + 1e-6)).all())
            targeted[kind].append({"ok": ok, "rel": rel, "pix": pix, "steps": steps})
            fooled_pairs.append((X, out, t, pred))
        except RuntimeError:
            targeted[kind].append({"ok": False})
        try:
            out = make_untargeted_fooling_image(X, pred, model, learning_rate=1.0, max_steps=100, bounds=bounds)
            rel, pix = perturbation(X, out, mean, std)
            steps = int(round(float((out - X).norm())))  # upper bound (clamping shortens steps); informative only
            untargeted[kind].append({"ok": predict(model, out) != pred, "rel": rel, "pix": pix, "steps": steps})
        except RuntimeError:
            untargeted[kind].append({"ok": False})

    head = (f"{'':34s} {'fooled':>7s} {'rate':>7s}  {'relL2 med':>8s} {'max':>8s}  {'px med':>7s} {'max':>7s}  "
            f"{'steps':>5s} {'max':>5s}")
    print("1. targeted fooling, bundled model (lr 1, <= 100 steps; relative L2 and max change in pixel space)")
    print(head)
    summary(f"shapes images ({a.pairs} pairs)", targeted["shapes"])
    summary(f"photos ({len(PHOTOS)} pairs)", targeted["photos"])
    summary("all", targeted["shapes"] + targeted["photos"])
    print("\n2. untargeted fooling (steps column: ||dX|| in normalized units, i.e. steps if none was clamped)")
    print(head)
    summary(f"shapes images ({a.pairs})", untargeted["shapes"])
    summary(f"photos ({len(PHOTOS)})", untargeted["photos"])

    print("\n3. unrecognizable images, confidence 0.996 (lr 1, <= 300 steps)")
    n = len(SHAPE_CLASSES)
    flat = (lo + (hi - lo) * torch.rand(n, 3, 1, 1, generator=g).to(dev)).expand(n, 3, 64, 64)
    noise = torch.maximum(torch.minimum(0.6 * torch.randn(n, 3, 64, 64, generator=g).to(dev), hi), lo)
    results = {}
    for name, start in (("flat", flat), ("noise", noise)):
        out = make_unrecognizable_image(torch.arange(n, device=dev), model, confidence=0.996, X_init=start,
                                        learning_rate=1.0, max_steps=300, bounds=bounds)
        with torch.no_grad():
            p_out = model(out).softmax(1)[torch.arange(n), torch.arange(n)]
            p_second = second(out).softmax(1)[torch.arange(n), torch.arange(n)]
        results[name] = (p_out, (out - start).flatten(1).norm(dim=1), p_second)
    print(f"{'class':14s} {'flat: p':>8s} {'||dX||':>7s} {'2nd p':>7s}   {'noise: p':>8s} {'||dX||':>7s} {'2nd p':>7s}")
    for c in range(n):
        f, z = results["flat"], results["noise"]
        print(f"{SHAPE_CLASSES[c]:14s} {float(f[0][c]):8.4f} {float(f[1][c]):7.2f} {float(f[2][c]):7.4f}   "
              f"{float(z[0][c]):8.4f} {float(z[1][c]):7.2f} {float(z[2][c]):7.4f}")
    reached = all(bool((r[0] >= 0.996).all()) for r in results.values())
    print(f"every class reached 0.996 from both starts: {reached}")

    print("\n4. transfer of targeted fooling images to the second model (utils.train_second)")
    minimal_t = minimal_c = strong_t = strong_c = base = 0
    for X, out, t, pred in fooled_pairs:
        p2 = predict(second, X)
        base += p2 == pred
        minimal_t += predict(second, out) == t
        minimal_c += predict(second, out) != p2
        strong = make_unrecognizable_image(t, model, confidence=0.99, X_init=out, learning_rate=1.0,
                                           max_steps=300, bounds=bounds)
        strong_t += predict(second, strong) == t
        strong_c += predict(second, strong) != p2
    m = len(fooled_pairs)
    print(f"pairs: {m}; the two models agree on {base}/{m} clean images")
    print(f"minimal fooling images (stop at the boundary): second model says the target {minimal_t}/{m} "
          f"({100 * minimal_t / m:.1f}%), changes its prediction {minimal_c}/{m} ({100 * minimal_c / m:.1f}%)")
    print(f"high-confidence (p >= 0.99 on the bundled model): target {strong_t}/{m} ({100 * strong_t / m:.1f}%), "
          f"changes its prediction {strong_c}/{m} ({100 * strong_c / m:.1f}%)")

    print("\nthe same fooling images pushed on by extra normalized ascent steps (batched, each towards its target)")
    X_clean = torch.cat([x for x, _, _, _ in fooled_pairs])
    X_adv = torch.cat([xf for _, xf, _, _ in fooled_pairs])
    T = torch.tensor([t for _, _, t, _ in fooled_pairs], device=dev)
    with torch.no_grad():
        clean2 = second(X_clean).argmax(1)
    print(f"{'extra steps':>11s} {'median rel. L2':>15s} {'1st says target':>16s} {'2nd says target':>16s} "
          f"{'2nd changes':>12s}")
    done = 0
    for k in (0, 5, 10, 20, 40, 80):
        while done < k:
            X_adv = fooling_step(X_adv, T, model, 1.0, bounds)
            done += 1
        d = (X_adv - X_clean) * std
        rel = (d.flatten(1).norm(dim=1) / (X_clean * std + mean).flatten(1).norm(dim=1)).median().item()
        with torch.no_grad():
            p1, p2 = model(X_adv).argmax(1), second(X_adv).argmax(1)
        print(f"{k:11d} {rel:15.3f} {100 * (p1 == T).float().mean().item():15.1f}% "
              f"{100 * (p2 == T).float().mean().item():15.1f}% {100 * (p2 != clean2).float().mean().item():11.1f}%")

if __name__ == "__main__":
    main()
