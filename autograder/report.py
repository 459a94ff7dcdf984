"""The class report: ``report.html`` with ``histogram.png`` (totals) and ``questions.png`` (verdicts per
question), a table of why points were lost per question, and the plain-text summary printed by the CLI."""
from __future__ import annotations

import html
import statistics
from collections import Counter, defaultdict
from pathlib import Path

from . import verdicts as V

COLORS = {V.PASSED: "#2e7d32", V.WRONG_VALUES: "#f9a825", V.PROPERTY_FAILED: "#fbc02d", V.NON_FINITE: "#ef6c00",
          V.WRONG_SHAPE: "#e65100", V.WRONG_DTYPE: "#bf360c", V.ERROR: "#c62828", V.TIMEOUT: "#6a1b9a",
          V.CRASHED: "#4a148c", V.MISSING: "#546e7a", V.NOT_ATTEMPTED: "#b0bec5", V.MODIFIED_INPUT: "#0277bd",
          V.WRONG_TYPE: "#880e4f"}


def _order(rows: list[dict]) -> list[tuple[str, str]]:
    """(assignment, question) pairs in the order they first appear (rows come sorted by question position)."""
    seen: dict[tuple[str, str], int] = {}
    for r in rows:
        seen.setdefault((r["assignment"], r["question"]), len(seen))
    return sorted(seen, key=lambda key: (key[0], seen[key]))


def totals(rows: list[dict]) -> dict[str, dict[str, float]]:
    """assignment -> student -> total points."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in rows:
        out[r["assignment"]][r["student"]] += r["points"]
    return {a: {s: round(p, 6) for s, p in d.items()} for a, d in out.items()}


def points_lost(case_rows: list[dict]) -> dict[tuple[str, str], Counter]:
    """(assignment, question) -> verdict -> points lost to cases with that verdict (summed over students)."""
    lost: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for c in case_rows:
        if c["verdict"] != V.PASSED:
            lost[(c["assignment"], c["question"])][c["verdict"]] += c["max_points"] - c["points"]
    return {key: Counter({v: round(p, 3) for v, p in counter.items()}) for key, counter in lost.items()}


def _figures(rows: list[dict], out: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tot = totals(rows)
    maxima = defaultdict(float)
    for (a, q) in _order(rows):
        maxima[a] += next(r["max_points"] for r in rows if r["assignment"] == a and r["question"] == q)
    fig = Figure(figsize=(6, 2.6 * max(1, len(tot))), dpi=100)
    FigureCanvasAgg(fig)
    for i, (a, scores) in enumerate(sorted(tot.items())):
        ax = fig.add_subplot(len(tot), 1, i + 1)
        top = maxima[a] or 1.0
        step = 0.5 if top <= 20 else top / 40
        edges = [-step / 2 + i * step for i in range(int(top / step) + 2)]
        ax.hist(list(scores.values()), bins=edges, color="#1565c0", edgecolor="white")
        ax.set_title(f"{a}: totals of {len(scores)} submissions (max {maxima[a]:g})", fontsize=9)
        ax.set_xlabel("points")
        ax.set_ylabel("students")
    fig.tight_layout()
    fig.savefig(out / "histogram.png")

    order = _order(rows)
    counts = {key: Counter() for key in order}
    for r in rows:
        counts[(r["assignment"], r["question"])][r["verdict"]] += 1
    fig = Figure(figsize=(9.5, 0.45 * len(order) + 1.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    labels = [q for _, q in order]
    left = [0] * len(order)
    for verdict in V.VERDICTS:
        widths = [counts[key][verdict] for key in order]
        if any(widths):
            ax.barh(labels, widths, left=left, color=COLORS[verdict], label=verdict)
            left = [a + b for a, b in zip(left, widths)]
    ax.invert_yaxis()
    ax.set_xlabel("students")
    ax.set_title("verdict per question")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(out / "questions.png")


def write(out_dir: str | Path, rows: list[dict], case_rows: list[dict]) -> Path:
    """Write the class report (HTML + two PNGs) from the store's rows; returns the HTML path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    e = html.escape
    parts = ["<!doctype html><meta charset='utf-8'><title>Class report</title>",
             "<style>body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto}table{border-collapse:"
             "collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}</style>",
             "<h1>Class report</h1>"]
    if not rows:
        parts.append("<p>No graded submissions.</p>")
    else:
        _figures(rows, out)
        for a, scores in sorted(totals(rows).items()):
            vals = list(scores.values())
            parts.append(f"<p><b>{e(a)}</b>: {len(vals)} submissions; mean {statistics.mean(vals):.2f}, median "
                         f"{statistics.median(vals):g}, min {min(vals):g}, max {max(vals):g}</p>")
        parts.append("<img src='histogram.png' alt='histogram of totals'><img src='questions.png' "
                     "alt='verdicts per question'>")
        parts.append("<h2>Why points were lost</h2><table><tr><th>assignment</th><th>question</th><th>mean points"
                     "</th><th>full marks</th><th>points lost, by verdict (summed over students)</th></tr>")
        lost = points_lost(case_rows)
        for key in _order(rows):
            qrows = [r for r in rows if (r["assignment"], r["question"]) == key]
            mean = statistics.mean(r["points"] for r in qrows)
            full = sum(r["points"] >= r["max_points"] for r in qrows)
            why = ", ".join(f"{v}: {p:g}" for v, p in lost.get(key, Counter()).most_common()) or "none"
            parts.append(f"<tr><td>{e(key[0])}</td><td>{e(key[1])}</td><td>{mean:.2f} / {qrows[0]['max_points']:g}"
                         f"</td><td>{full}/{len(qrows)}</td><td>{e(why)}</td></tr>")
        parts.append("</table>")
    path = out / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def summary(rows: list[dict], case_rows: list[dict]) -> str:
    """A plain-text table: per question mean points, full marks and the main reason points were lost."""
    if not rows:
        return "no graded submissions"
    lost = points_lost(case_rows)
    lines = [("assignment", "question", "mean", "max", "full marks", "points lost mostly to")]
    for key in _order(rows):
        qrows = [r for r in rows if (r["assignment"], r["question"]) == key]
        top = lost.get(key, Counter()).most_common(1)
        lines.append((key[0], key[1], f"{statistics.mean(r['points'] for r in qrows):.2f}",
                      f"{qrows[0]['max_points']:g}", f"{sum(r['points'] >= r['max_points'] for r in qrows)}/"
                      f"{len(qrows)}", f"{top[0][0]} ({top[0][1]:g})" if top else "-"))
    for a, scores in sorted(totals(rows).items()):
        vals = list(scores.values())
        lines.append((a, "TOTAL", f"{statistics.mean(vals):.2f}", "", "", f"{len(vals)} submissions"))
    widths = [max(len(str(l[i])) for l in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(l, widths)).rstrip() for l in lines)
