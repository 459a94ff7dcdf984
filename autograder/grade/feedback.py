"""Per-student feedback: ``OUT_DIR/feedback/<student>/<assignment>.html``, one self-contained file.

The total, then one section per question: points, verdict, and the cases -- public cases in full (message), hidden
cases only as their verdict. For a public case that failed with an image-like output (a 3-D / 4-D tensor), the page
shows the student's output, the reference and their difference, labelled, output and reference on one shared scale;
the images are embedded (PNG data URIs), so the page is the only file. A notebook whose code could not be loaded at
all (it exits, crashes or hangs while loading) gets one message at the top instead of the same message per question.
"""
from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Mapping

import torch

from autograder.core import verdicts as V
from autograder.grade.report import _e, _fmt  # one place for how text and points are shown to people

# Okabe-Ito colours (colour-blind safe): bluish green, vermillion, orange, blue.
STYLE = """body{font-family:system-ui,sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem;color:#222;
line-height:1.4}table{border-collapse:collapse;margin:.5rem 0 1rem}
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}th{background:#f4f4f4}
td.num{text-align:right;white-space:nowrap}.v{font-weight:600;white-space:nowrap}.passed{color:#007a5a}
.failed{color:#b34700}h2{margin-top:2rem;font-size:1.2rem;border-bottom:1px solid #ddd}
.muted{color:#666}.banner{border-left:.35rem solid #D55E00;background:#fff4ec;padding:.6rem 1rem;margin:1rem 0}
table.img td,table.img th{border:none;background:none;padding:.15rem .4rem;text-align:center;
font-weight:normal}
table.img th.row{text-align:right;font-weight:600;vertical-align:middle}
table.img img{image-rendering:pixelated;border:1px solid #bbb;display:block}
figure{margin:.5rem 0 1.5rem}figcaption{font-size:.9rem;color:#444;max-width:50rem}
.key{display:inline-block;width:.9rem;height:.9rem;vertical-align:-.1rem;border:1px solid #888}"""

#: Verdicts whose case images are shown: the output came back with the reference's shape but is not accepted.
IMAGE_VERDICTS = (V.WRONG_VALUES, V.PROPERTY_FAILED, V.MODIFIED_INPUT)

#: Messages of a notebook that could not be graded at all start with one of these (see ``runner``): its code
#: could not be loaded (it exits, crashes or hangs while loading), or the file could not be read.
NOT_LOADED = "the notebook's code could not be loaded"
NOT_READ = "notebook could not be read"

NEGATIVE = (0x00, 0x72, 0xB2)   # Okabe-Ito blue: output below the reference
POSITIVE = (0xD5, 0x5E, 0x00)   # Okabe-Ito vermillion: output above the reference


def _num(x: float) -> str:
    return f"{x:.3g}"


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


def notebook_failure(results: list[V.Result]) -> str | None:
    """The one message of a notebook that could not be loaded or read (every question failed with it), else None."""
    if not results:
        return None
    messages = {r.message for r in results}
    if len(messages) == 1 and all(r.verdict != V.PASSED and r.message.startswith((NOT_LOADED, NOT_READ))
                                  for r in results):
        return results[0].message
    return None


# -- images ----------------------------------------------------------------------------------------------------------
def _examples(t: torch.Tensor, limit: int = 4) -> list[torch.Tensor]:
    """Up to ``limit`` images, each (H, W) grey or (H, W, 3) colour, from an (N, H, W) tensor (N grey images) or
    an (N, C, H, W) one (colour when C is 3, else the first channel)."""
    t = t.detach().to(torch.float32).cpu()
    out = []
    for x in t[:limit]:
        if x.dim() == 3:
            x = x.permute(1, 2, 0) if x.shape[0] == 3 else x[0]
        out.append(x)
    return out


def _image_rows(t: torch.Tensor, limit: int = 4) -> list:
    """Up to ``limit`` displayable 2-D (grey) or HxWx3 (colour) arrays in [0, 1], each scaled on its own."""
    out = []
    for x in _examples(t, limit):
        lo, hi = float(x.min()), float(x.max())
        out.append(((x - lo) / (hi - lo if hi > lo else 1.0)).clamp(0, 1).numpy())
    return out


def _tile(img, size: int = 128):
    """A uint8 RGB tile of at most (size, size): the [0, 1] image (or an RGB uint8 array) scaled to fit, nearest
    neighbour when enlarged (pixels stay visible), area-averaged when reduced; grey becomes RGB."""
    import numpy as np
    from PIL import Image

    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = (np.clip(img.astype(np.float32), 0, 1) * 255).round().astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    h, w = img.shape[:2]
    if max(h, w) <= size:
        scale = max(1, size // max(h, w))
        return np.kron(img, np.ones((scale, scale, 1), dtype=np.uint8))
    ratio = size / max(h, w)
    pil = Image.fromarray(img).resize((max(1, round(w * ratio)), max(1, round(h * ratio))), Image.BOX)
    return np.asarray(pil)


def _png(array) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    # zlib level 1: measured on a 128 px photo, 1.0 ms and 4 % larger vs 4.0 ms with `optimize`
    Image.fromarray(array).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _diverging(d, scale: float):
    """RGB uint8: white where ``d`` is 0, blue for negative, vermillion for positive, full colour at +-scale."""
    import numpy as np

    t = np.clip(np.asarray(d, dtype=np.float32) / (scale if scale > 0 else 1.0), -1, 1)[..., None]
    white = np.array([255, 255, 255], dtype=np.float32)
    neg = white + (np.array(NEGATIVE, dtype=np.float32) - white) * np.clip(-t, 0, 1)
    pos = white + (np.array(POSITIVE, dtype=np.float32) - white) * np.clip(t, 0, 1)
    return np.where(t < 0, neg, pos).round().astype(np.uint8)


def comparison(got: torch.Tensor, expected: torch.Tensor, limit: int = 4) -> dict | None:
    """The panels of one failing output, or None when it is not image-like (or shapes differ / not finite).

    Returns {"rows": [(label, [png bytes per example])...], "scales": [(lo, hi) per example], "diff_scale": d,
    "colour": bool}: output and reference of each example share one grey (or colour) scale; the difference
    (output - reference) has one scale for every example."""
    if not (isinstance(got, torch.Tensor) and isinstance(expected, torch.Tensor)):
        return None
    if expected.dim() not in (3, 4) or got.shape != expected.shape or min(expected.shape[-2:]) < 4:
        return None
    g_all, e_all = got.detach().to(torch.float32), expected.detach().to(torch.float32)
    if not (torch.isfinite(g_all).all() and torch.isfinite(e_all).all()):
        return None
    gs, es = _examples(g_all, limit), _examples(e_all, limit)
    colour = gs[0].dim() == 3
    diffs = [g - e for g, e in zip(gs, es)]
    if colour:
        diffs = [d.norm(dim=-1) for d in diffs]  # per-pixel size of the colour difference
    d_scale = max(float(d.abs().max()) for d in diffs)
    rows: list = [("your output", []), ("reference", []), ("difference", [])]
    scales, flat = [], set()
    for g, e, d in zip(gs, es, diffs):
        lo, hi = min(float(g.min()), float(e.min())), max(float(g.max()), float(e.max()))
        scales.append((lo, hi))
        for name, x in (("your output", g), ("reference", e)):
            if hi > lo and float(x.max() - x.min()) < 0.05 * (hi - lo):
                flat.add(name)  # looks uniform on the shared scale although it may vary
        span = hi - lo if hi > lo else 1.0
        rows[0][1].append(_png(_tile(((g - lo) / span).clamp(0, 1).numpy())))
        rows[1][1].append(_png(_tile(((e - lo) / span).clamp(0, 1).numpy())))
        if colour:
            import numpy as np
            grey = 1.0 - (d / (d_scale if d_scale > 0 else 1.0)).clamp(0, 1).numpy()
            rows[2][1].append(_png(_tile(np.asarray(grey, dtype=np.float32))))
        else:
            rows[2][1].append(_png(_tile(_diverging(d.numpy(), d_scale))))
    return {"rows": rows, "scales": scales, "diff_scale": d_scale, "colour": colour, "flat": sorted(flat)}


def image_png(got: torch.Tensor, expected: torch.Tensor, path: Path) -> bool:
    """Save one PNG: the student's images (top row), the reference's (middle) on the same scale, and the difference
    (bottom); False if not image-like. (The feedback page itself embeds its images; this is for other uses.)"""
    panels = comparison(got, expected)
    if panels is None:
        return False
    import numpy as np
    from PIL import Image

    lines = []
    for _, pngs in panels["rows"]:
        tiles = [np.asarray(Image.open(io.BytesIO(p)).convert("RGB")) for p in pngs]
        h = max(t.shape[0] for t in tiles)
        padded = []
        for t in tiles:
            pad = np.full((h, t.shape[1] + 6, 3), 255, dtype=np.uint8)
            pad[:t.shape[0], :t.shape[1]] = t
            padded.append(pad)
        lines.append(np.concatenate(padded, axis=1))
    width = max(line.shape[1] for line in lines)
    sheet = np.full((sum(line.shape[0] + 6 for line in lines), width, 3), 255, dtype=np.uint8)
    y = 0
    for line in lines:
        sheet[y:y + line.shape[0], :line.shape[1]] = line
        y += line.shape[0] + 6
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(path)
    return True


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure_html(case: str, key: str, verdict: str, panels: dict) -> str:
    n = len(panels["scales"])
    head = "".join(f"<th>example {i + 1}</th>" for i in range(n)) if n > 1 else "<th></th>"
    body = []
    for label, pngs in panels["rows"]:
        shown = label if not (label == "reference" and verdict == V.PROPERTY_FAILED) else "a correct answer"
        cells = "".join(f"<td><img src='{_data_uri(p)}' alt='{_e(shown)}, example {i + 1}'></td>"
                        for i, p in enumerate(pngs))
        body.append(f"<tr><th class='row'>{_e(shown)}</th>{cells}</tr>")
    scales = "; ".join(f"{'example ' + str(i + 1) + ': ' if n > 1 else ''}black = {_num(lo)}, white = {_num(hi)}"
                       for i, (lo, hi) in enumerate(panels["scales"]))
    d = panels["diff_scale"]
    if d == 0:
        diff = "the difference is zero everywhere"
    elif panels["colour"]:
        diff = (f"difference: size of the colour difference per pixel, white = 0, black = {_num(d)} (the largest "
                "difference shown)")
    else:
        diff = (f"difference = your output - reference: white = 0, <span class='key' style='background:#D55E00'>"
                f"</span> vermillion = +{_num(d)} (yours higher), <span class='key' style='background:#0072B2'></span>"
                f" blue = -{_num(d)} (yours lower)")
    flat = panels.get("flat") or []
    note = ""
    if flat:
        one = len(flat) == 1
        who = " and ".join("your output" if f == "your output" else "the reference" for f in flat)
        note = (f" {who[0].upper() + who[1:]} look{'s' * one} uniform: {'its' if one else 'their'} values span less "
                "than 5 % of the shared scale, so the two differ far more than either varies.")
    if verdict == V.PROPERTY_FAILED:
        note += (" Answers to this question are not unique: the reference is one correct answer, so a difference "
                 "alone is not the error; the message says which property failed.")
    return (f"<figure><table class='img'><tr><th></th>{head}</tr>{''.join(body)}</table><figcaption>Case "
            f"<b>{_e(case)}</b>, output <code>{_e(key)}</code>. Your output and the reference share one scale "
            f"({'colour channels ' if panels['colour'] else 'grey levels '}{scales}); {diff}.{note}</figcaption>"
            "</figure>")


# -- the page --------------------------------------------------------------------------------------------------------
def _verdict_cell(verdict: str) -> str:
    cls = "passed" if verdict == V.PASSED else "failed"
    return f"<td class='v {cls}'>{_e(verdict)}</td>"


def write(out_dir: str | Path, student: str, assignment: str, results: list[V.Result],
          expected: Mapping[tuple[str, str], Mapping[str, torch.Tensor]] | None = None) -> Path:
    """Write the feedback page for one submission (one HTML file, images embedded); returns its path."""
    folder = Path(out_dir) / "feedback" / student
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{assignment}__*.png"):  # separate image files of earlier versions
        old.unlink()
    total = sum(r.points for r in results)
    max_total = sum(r.max_points for r in results)
    parts = [f"<!doctype html><html lang='en'><meta charset='utf-8'><title>{_e(assignment)}: {_e(student)}</title>",
             f"<style>{STYLE}</style><h1>{_e(assignment)}</h1><p>Student: <b>{_e(student)}</b></p>",
             f"<p>Total: <b>{_fmt(total)} / {_fmt(max_total)}</b> points</p>"]
    failure = notebook_failure(results)
    if failure is not None:
        advice = ("Submit the notebook file (.ipynb) itself, saved by Jupyter." if failure.startswith(NOT_READ) else
                  "Run the notebook from the top (Kernel, Restart Kernel and Run All Cells) and fix the first cell "
                  "that stops it; every question is graded once the notebook loads.")
        parts.append(f"<div class='banner'><b>No question could be graded.</b> {_e(failure[0].upper() + failure[1:])}"
                     f".<br>{advice}</div>")
        parts.append("<table><tr><th>question</th><th>points</th></tr>")
        parts += [f"<tr><td>{_e(r.question)}</td><td class='num'>{_fmt(r.points)} / {_fmt(r.max_points)}</td></tr>"
                  for r in results]
        parts.append("</table>")
    else:
        parts.append("<table><tr><th>question</th><th>points</th><th>verdict</th><th>message</th></tr>")
        for r in results:
            parts.append(f"<tr><td><a href='#{_e(r.question)}'>{_e(r.question)}</a></td>"
                         f"<td class='num'>{_fmt(r.points)} / {_fmt(r.max_points)}</td>{_verdict_cell(r.verdict)}"
                         f"<td>{_e(student_message(r))}</td></tr>")
        parts.append("</table>")
        for r in results:
            parts.append(_question_html(r, (expected or {})))
    legend = "".join(f"<li><b>{_e(v)}</b>: {_e(m)}</li>" for v, m in V.MEANING.items())
    parts.append(f"<h2>Verdicts</h2><ul>{legend}</ul>")
    path = folder / f"{assignment}.html"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    tmp.replace(path)
    return path


def _question_html(r: V.Result, expected: Mapping) -> str:
    parts = [f"<h2 id='{_e(r.question)}'>{_e(r.question)}: {_fmt(r.points)} / {_fmt(r.max_points)} points</h2>"]
    cases = r.cases
    first = cases[0] if cases else None
    if first is not None and len(cases) > 1 and all(
            c.verdict == first.verdict and c.message == first.message for c in cases):
        # the same verdict and message for every case (passed, not attempted, missing, a syntax error...): say it once
        n_hidden = sum(not c.public for c in cases)
        what = f"all {len(cases)} cases ({len(cases) - n_hidden} public, {n_hidden} hidden)"
        parts.append(f"<p>{what}: <span class='v {'passed' if first.passed else 'failed'}'>{_e(first.verdict)}"
                     f"</span>{'' if first.passed else ' &mdash; ' + _e(first.message)}</p>")
        return "\n".join(parts)
    parts.append("<table><tr><th>case</th><th>points</th><th>verdict</th><th>message</th></tr>")
    figures = []
    hidden_no = 0
    for c in cases:
        if c.public:
            name, message = _e(c.case), _e(c.message)
        else:
            hidden_no += 1
            name, message = f"hidden {hidden_no}", "<span class='muted'>hidden case: verdict only</span>"
        parts.append(f"<tr><td>{name}</td><td class='num'>{_fmt(c.points)} / {_fmt(c.max_points)}</td>"
                     f"{_verdict_cell(c.verdict)}<td>{message}</td></tr>")
        ref = expected.get((r.question, c.case), {})
        if c.public and c.verdict in IMAGE_VERDICTS and c.output and ref:
            for key, exp in ref.items():
                got = c.output.get(key)
                panels = comparison(got, exp) if got is not None else None
                if panels is not None:
                    figures.append(_figure_html(c.case, key, c.verdict, panels))
    parts.append("</table>")
    parts += figures
    return "\n".join(parts)
