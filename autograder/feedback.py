"""Per-student feedback: ``OUT_DIR/feedback/<student>/<assignment>.html``.

The total, then one section per question: points, verdict, and the cases -- public cases in full (message), hidden
cases only as their verdict. For image-like outputs (3-D / 4-D tensors) of public cases, a small PNG shows the
student's output beside the reference's.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Mapping

import torch

from . import verdicts as V

STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}
.passed{color:#186a1e}.v{font-weight:600}h2{margin-top:2rem;font-size:1.2rem}img{max-width:100%}
.muted{color:#666}"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _fmt(x: float) -> str:
    return f"{x:g}"


def student_message(result: V.Result) -> str:
    """The question's message without details of hidden cases."""
    failing = [c for c in result.cases if not c.passed]
    if not failing:
        return result.message
    first = failing[0]
    if all(c.message == first.message and c.verdict == first.verdict for c in result.cases):
        return first.message  # the same for every case (missing, not attempted, notebook not loaded...)
    n_passed = len(result.cases) - len(failing)
    head = f"{n_passed}/{len(result.cases)} cases passed"
    public = next((c for c in failing if c.public), None)
    if public is not None:
        return f"{head}; public case {public.case!r}: {public.message}"
    return f"{head}; a hidden case failed ({first.verdict})"


def _image_rows(t: torch.Tensor, limit: int = 4) -> list:
    """Up to ``limit`` displayable 2-D (grey) or HxWx3 (colour) arrays from an (N,H,W) or (N,C,H,W) tensor."""
    t = t.detach().to(torch.float32)
    out = []
    for x in t[:limit]:
        if x.dim() == 3:
            x = x.permute(1, 2, 0) if x.shape[0] == 3 else x[0]
        lo, hi = float(x.min()), float(x.max())
        out.append(((x - lo) / (hi - lo if hi > lo else 1.0)).clamp(0, 1).numpy())
    return out


def _tile(img, size: int = 96):
    """A (size, size, 3) uint8 tile: the [0, 1] image scaled up (nearest neighbour), grey turned to RGB."""
    import numpy as np

    img = np.asarray(img, dtype=np.float32)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    h, w = img.shape[:2]
    scale = max(1, size // max(h, w))
    img = np.kron(img, np.ones((scale, scale, 1), dtype=np.float32))[:size, :size]
    tile = np.full((size, size, 3), 255, dtype=np.uint8)
    tile[:img.shape[0], :img.shape[1]] = (img * 255).round().astype(np.uint8)
    return tile


def image_png(got: torch.Tensor, expected: torch.Tensor, path: Path) -> bool:
    """Save the student's images (top row) above the reference's (bottom row); False if not image-like.

    Written with Pillow directly (no matplotlib figure), so feedback for a whole class costs milliseconds."""
    if expected.dim() not in (3, 4) or got.shape != expected.shape or min(expected.shape[-2:]) < 4:
        return False
    if not torch.isfinite(got.to(torch.float32)).all():
        return False
    import numpy as np
    from PIL import Image

    rows = [[_tile(x) for x in _image_rows(got)], [_tile(x) for x in _image_rows(expected)]]
    gap = np.full((96, 6, 3), 255, dtype=np.uint8)
    lines = [np.concatenate([part for t in row for part in (t, gap)][:-1], axis=1) for row in rows]
    sheet = np.concatenate([lines[0], np.full((6, lines[0].shape[1], 3), 255, dtype=np.uint8), lines[1]], axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(path)
    return True


def write(out_dir: str | Path, student: str, assignment: str, results: list[V.Result],
          expected: Mapping[tuple[str, str], Mapping[str, torch.Tensor]] | None = None) -> Path:
    """Write the feedback page (and its images) for one submission; returns the HTML path."""
    folder = Path(out_dir) / "feedback" / student
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{assignment}__*.png"):
        old.unlink()
    total = sum(r.points for r in results)
    max_total = sum(r.max_points for r in results)
    parts = [f"<!doctype html><meta charset='utf-8'><title>{_e(assignment)}: {_e(student)}</title>",
             f"<style>{STYLE}</style><h1>{_e(assignment)}</h1><p>Student: <b>{_e(student)}</b></p>",
             f"<p>Total: <b>{_fmt(total)} / {_fmt(max_total)}</b> points</p>",
             "<table><tr><th>question</th><th>points</th><th>verdict</th><th>message</th></tr>"]
    for r in results:
        parts.append(f"<tr><td><a href='#{_e(r.question)}'>{_e(r.question)}</a></td>"
                     f"<td>{_fmt(r.points)} / {_fmt(r.max_points)}</td><td class='v {r.verdict.replace(' ', '-')}'>"
                     f"{_e(r.verdict)}</td><td>{_e(student_message(r))}</td></tr>")
    parts.append("</table>")
    for r in results:
        parts.append(f"<h2 id='{_e(r.question)}'>{_e(r.question)}: {_fmt(r.points)} / {_fmt(r.max_points)}</h2>")
        parts.append("<table><tr><th>case</th><th>points</th><th>verdict</th><th>message</th></tr>")
        images = []
        hidden_no = 0
        for c in r.cases:
            if c.public:
                name, message = c.case, c.message
            else:
                hidden_no += 1
                name, message = f"hidden {hidden_no}", "<span class='muted'>hidden case: verdict only</span>"
            parts.append(f"<tr><td>{_e(name)}</td><td>{_fmt(c.points)} / {_fmt(c.max_points)}</td>"
                         f"<td class='v {c.verdict.replace(' ', '-')}'>{_e(c.verdict)}</td>"
                         f"<td>{message if not c.public else _e(message)}</td></tr>")
            ref = (expected or {}).get((r.question, c.case), {})
            if c.public and c.output and ref:
                for key, exp in ref.items():
                    got = c.output.get(key)
                    png = folder / f"{assignment}__{r.question}__{c.case}__{key}.png"
                    if got is not None and image_png(got, exp, png):
                        images.append((c.case, key, png.name))
        parts.append("</table>")
        for case, key, name in images:
            parts.append(f"<figure><img src='{_e(name)}' alt='{_e(case)}'><figcaption>case {_e(case)} ({_e(key)}): "
                         "your output (top) and the reference (bottom)</figcaption></figure>")
    legend = "".join(f"<li><b>{_e(v)}</b>: {_e(m)}</li>" for v, m in V.MEANING.items())
    parts.append(f"<h2>Verdicts</h2><ul>{legend}</ul>")
    path = folder / f"{assignment}.html"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    tmp.replace(path)
    return path
