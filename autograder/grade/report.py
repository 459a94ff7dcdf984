"""The class report: ``report.html``, one self-contained page (figures embedded as PNG data URIs) grouped by
assignment: the totals' histogram, the verdicts per question (counting students), per question the most common
message, and the students with their totals and links to their feedback pages (``feedback/<student>/<a>.html``).
Also the plain-text summary printed by the CLI."""
from __future__ import annotations

import base64
import html
import io
import re
import statistics
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import quote

from autograder.core import verdicts as V

#: verdict -> (colour, hatch). Okabe-Ito's colour-blind-safe palette; verdicts of one family share a colour and
#: differ by hatching (wrong shape / non-finite / wrong dtype; error / wrong type), greys for "nothing to grade".
STYLES = {V.PASSED: ("#009E73", ""), V.WRONG_VALUES: ("#E69F00", ""), V.PROPERTY_FAILED: ("#F0E442", ""),
          V.MODIFIED_INPUT: ("#56B4E9", ""), V.NON_FINITE: ("#D55E00", "///"), V.WRONG_SHAPE: ("#D55E00", ""),
          V.WRONG_DTYPE: ("#D55E00", "xx"), V.WRONG_TYPE: ("#CC79A7", "///"), V.ERROR: ("#CC79A7", ""),
          V.TIMEOUT: ("#0072B2", ""), V.CRASHED: ("#000000", ""), V.MISSING: ("#777777", ""),
          V.NOT_ATTEMPTED: ("#CCCCCC", "")}
COLORS = {v: c for v, (c, _) in STYLES.items()}
HIST_COLOR = "#0072B2"

STYLE = """body{font-family:system-ui,sans-serif;max-width:80rem;margin:2rem auto;padding:0 1rem;color:#222;
line-height:1.4}table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#f4f4f4}td.num{text-align:right;white-space:nowrap}
h2{margin-top:2.5rem;border-bottom:2px solid #0072B2}h3{margin-top:1.5rem}.figs{display:flex;flex-wrap:wrap;gap:1rem;
align-items:flex-start}.figs img{max-width:100%;border:1px solid #ddd}.muted{color:#666}.note{color:#444;
max-width:60rem}.key{display:inline-block;width:.85rem;height:.85rem;vertical-align:-.1rem;border:1px solid #666;
margin-right:.2rem}.counts span.c{display:block;white-space:nowrap}ul.msgs{margin:0;padding-left:1rem}
.who{font-size:.9em}td.pts{text-align:right;white-space:nowrap}
ul.legend{columns:2;max-width:60rem}code{font-size:.9em}"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _fmt(x: float) -> str:
    """Points for people: at most two decimals, no trailing zeros."""
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _swatch(verdict: str) -> str:
    colour, hatch = STYLES.get(verdict, ("#999999", ""))
    if hatch:
        angle = "-45deg" if hatch == "xx" else "45deg"
        bg = f"repeating-linear-gradient({angle},{colour} 0 3px,#fff 3px 5px)"
    else:
        bg = colour
    return f"<span class='key' style='background:{bg}' title='{_e(verdict)}'></span>"


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


def students_by_verdict(rows: list[dict]) -> dict[tuple[str, str], Counter]:
    """(assignment, question) -> verdict -> number of STUDENTS whose question got that verdict."""
    out: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for r in rows:
        out[(r["assignment"], r["question"])][r["verdict"]] += 1
    return dict(out)


_NUMBER = re.compile(r"-?\d+(\.\d+)?(e[-+]?\d+)?")


def message_kind(message: str) -> str:
    """A message with its numbers masked, so "max abs error 0.23 at index (1, 2)" and "... 0.5 at index (0, 0)"
    count as one kind of message."""
    return _NUMBER.sub("#", message)


def common_messages(rows: list[dict], top: int = 1) -> dict:
    """(assignment, question) -> (an example of the most common message among students who lost points, the
    number of students with a message of that kind, the number who lost points); questions nobody lost points on
    are left out. With ``top`` > 1: (assignment, question) -> ([(example, number of students, their names)...]
    for the ``top`` most common kinds, the number of kinds, the number of students who lost points)."""
    kinds: dict[tuple[str, str], Counter] = defaultdict(Counter)
    example: dict[tuple[tuple[str, str], str], str] = {}
    who: dict[tuple[tuple[str, str], str], list[str]] = defaultdict(list)
    for r in rows:
        if r["points"] < r["max_points"] - 1e-9:
            key, kind = (r["assignment"], r["question"]), message_kind(r["message"])
            kinds[key][kind] += 1
            example.setdefault((key, kind), r["message"])
            who[(key, kind)].append(r["student"])
    out = {}
    for key, counter in kinds.items():
        if top == 1:
            kind, n = counter.most_common(1)[0]
            out[key] = (example[(key, kind)], n, sum(counter.values()))
        else:
            out[key] = ([(example[(key, kind)], n, sorted(who[(key, kind)])) for kind, n in counter.most_common(top)],
                        len(counter), sum(counter.values()))
    return out


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _histogram(a: str, scores: dict[str, float], top: float) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2, 2.9), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    top = top or 1.0
    step = 0.5 if top <= 20 else top / 40
    edges = [-step / 2 + i * step for i in range(int(top / step) + 2)]
    vals = list(scores.values())
    ax.hist(vals, bins=edges, color=HIST_COLOR, edgecolor="white")
    mean = statistics.mean(vals)
    ax.axvline(mean, color="#000000", linestyle="--", linewidth=1, label=f"mean {mean:.2f}")
    ax.set_xlim(edges[0], edges[-1])
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"totals of {len(vals)} students (out of {_fmt(top)} points)", fontsize=9)
    ax.set_xlabel("total points")
    ax.set_ylabel("number of students")
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    fig.tight_layout()
    return _png(fig)


def _verdict_chart(order: list[str], counts: dict[str, Counter], n_students: int) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.4, 0.3 * len(order) + 1.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    labels = [f"Q{i + 1} {q}" for i, q in enumerate(order)]
    left = [0] * len(order)
    for verdict in V.VERDICTS:
        widths = [counts[q][verdict] for q in order]
        if any(widths):
            colour, hatch = STYLES[verdict]
            ax.barh(labels, widths, left=left, color=colour, hatch=hatch or None,
                    edgecolor="white", linewidth=0.6, label=verdict)
            left = [a + b for a, b in zip(left, widths)]
    ax.invert_yaxis()
    ax.set_xlim(0, max(n_students, 1))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlabel("number of students (one verdict per student and question)")
    ax.set_title("verdict per question", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return _png(fig)


def _feedback_link(student: str, assignment: str) -> str:
    return f"feedback/{quote(student, safe='')}/{quote(assignment, safe='')}.html"


def _names(students: list[str], assignment: str, limit: int = 8) -> str:
    """Students linked to their feedback pages: the first ``limit``, then how many more."""
    links = ", ".join(f"<a href='{_e(_feedback_link(s, assignment))}'>{_e(s)}</a>" for s in students[:limit])
    return links + (f" and {len(students) - limit} more" if len(students) > limit else "")


def _assignment_html(a: str, rows: list[dict]) -> list[str]:
    order = [q for (aa, q) in _order(rows) if aa == a]
    maxima = {q: next(r["max_points"] for r in rows if r["question"] == q) for q in order}
    top = sum(maxima.values())
    scores = totals(rows)[a]
    vals = list(scores.values())
    counts = {q: c for (aa, q), c in students_by_verdict(rows).items()}
    common = {q: m for (aa, q), m in common_messages(rows, top=3).items()}
    n = len(vals)
    parts = [f"<h2 id='{_e(a)}'>{_e(a)}</h2>",
             f"<p><b>{n}</b> student{'s' * (n != 1)} graded. Total points (out of {_fmt(top)}): mean "
             f"<b>{statistics.mean(vals):.2f}</b> (standard deviation {statistics.pstdev(vals):.2f}), median "
             f"{_fmt(statistics.median(vals))}, lowest {_fmt(min(vals))},"
             f" highest {_fmt(max(vals))}; {sum(v >= top - 1e-9 for v in vals)} with full marks.</p>",
             "<div class='figs'>"
             f"<img src='{_data_uri(_histogram(a, scores, top))}' alt='{_e(a)}: histogram of total points; bars "
             "count students'>"
             f"<img src='{_data_uri(_verdict_chart(order, counts, n))}' alt='{_e(a)}: verdict per question; bars "
             "count students'></div>",
             "<p class='note'>Left: how many students reached each total. Right: one bar per question, split by "
             "how many <b>students</b> got each verdict on it (a student with partial credit counts under the "
             "verdict of their first failing case).</p>",
             "<h3>Questions</h3>",
             "<table><tr><th>#</th><th>question</th><th>points</th><th>mean points</th><th>students with full "
             "marks</th><th>students per verdict</th><th>most common messages among the students who lost points "
             "(numbers ignored when counting)</th></tr>"]
    for i, q in enumerate(order):
        qrows = [r for r in rows if r["question"] == q]
        mean = statistics.mean(r["points"] for r in qrows)
        full = sum(r["points"] >= r["max_points"] - 1e-9 for r in qrows)
        verdicts = "".join(f"<span class='c'>{_swatch(v)}{_e(v)}: <b>{counts[q][v]}</b></span>"
                           for v in V.VERDICTS if counts[q][v])
        if q in common:
            shown, kinds, lost = common[q]
            items = "".join(f"<li><b>{k} of {lost}</b> student{'s' * (lost != 1)}: {_e(message)} "
                            f"<span class='who'>({_names(names, a)})</span></li>" for message, k, names in shown)
            more = kinds - len(shown)
            rest = f"<li class='muted'>and {more} other message{'s' * (more != 1)}</li>" if more else ""
            why = f"<ul class='msgs'>{items}{rest}</ul>"
        else:
            why = "<span class='muted'>nobody lost points</span>"
        parts.append(f"<tr><td>Q{i + 1}</td><td>{_e(q)}</td><td class='num'>{_fmt(maxima[q])}</td>"
                     f"<td class='num'>{mean:.2f}</td><td class='num'>{full} of {len(qrows)}</td>"
                     f"<td class='counts'>{verdicts}</td><td>{why}</td></tr>")
    parts.append("</table>")
    parts.append("<h3>Students</h3><p class='note'>Total and points per question (Q1, Q2, ... as numbered above; the "
                 "swatch is the question's verdict, hover for its message). The student's name opens their "
                 "feedback page.</p>")
    head = "".join(f"<th title='{_e(q)}'>Q{i + 1}</th>" for i, q in enumerate(order))
    parts.append(f"<table><tr><th>student</th><th>total (of {_fmt(top)})</th>{head}</tr>")
    by_student: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in rows:
        by_student[r["student"]][r["question"]] = r
    for student in sorted(by_student):
        cells = []
        for q in order:
            r = by_student[student].get(q)
            if r is None:
                cells.append("<td></td>")
            else:
                cells.append(f"<td class='pts' title='{_e(r['verdict'])}: {_e(r['message'])}'>{_swatch(r['verdict'])}"
                             f"{_fmt(r['points'])}</td>")
        parts.append(f"<tr><td><a href='{_e(_feedback_link(student, a))}'>{_e(student)}</a></td>"
                     f"<td class='num'><b>{_fmt(scores[student])}</b></td>{''.join(cells)}</tr>")
    parts.append("</table>")
    return parts


def write(out_dir: str | Path, rows: list[dict], case_rows: list[dict]) -> Path:
    """Write the class report (one HTML file, figures embedded) from the store's rows; returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in ("histogram.png", "questions.png"):  # separate figures of earlier versions
        (out / old).unlink(missing_ok=True)
    parts = ["<!doctype html><html lang='en'><meta charset='utf-8'><title>Class report</title>",
             f"<style>{STYLE}</style>", "<h1>Class report</h1>"]
    if not rows:
        parts.append("<p>No graded submissions.</p>")
    else:
        by_assignment: dict[str, list[dict]] = defaultdict(list)
        for r in rows:
            by_assignment[r["assignment"]].append(r)
        tot = totals(rows)
        parts.append("<p class='note'>One section per assignment. Every count in this report counts "
                     "<b>students</b> (one submission per student and assignment); points are the points the grader "
                     "gave (partial credit per case). Each student's name links to the feedback page they see.</p>")
        parts.append("<table><tr><th>assignment</th><th>students</th><th>mean total</th><th>of</th></tr>")
        for a, group in sorted(by_assignment.items()):
            top = sum(next(r["max_points"] for r in group if r["question"] == q)
                      for (aa, q) in _order(group))
            parts.append(f"<tr><td><a href='#{_e(a)}'>{_e(a)}</a></td><td class='num'>{len(tot[a])}</td>"
                         f"<td class='num'>{statistics.mean(tot[a].values()):.2f}</td><td class='num'>{_fmt(top)}"
                         "</td></tr>")
        parts.append("</table>")
        for a, group in sorted(by_assignment.items()):
            parts += _assignment_html(a, group)
        legend = "".join(f"<li>{_swatch(v)}<b>{_e(v)}</b>: {_e(V.MEANING[v])}</li>" for v in V.VERDICTS)
        parts.append(f"<h2>Verdicts</h2><ul class='legend'>{legend}</ul>")
    path = out / "report.html"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    tmp.replace(path)
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
                      f"{len(qrows)}", f"{top[0][0]} ({top[0][1]:g} points)" if top else "-"))
    for a, scores in sorted(totals(rows).items()):
        vals = list(scores.values())
        lines.append((a, "TOTAL", f"{statistics.mean(vals):.2f}", "", "", f"{len(vals)} submissions"))
    widths = [max(len(str(l[i])) for l in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(l, widths)).rstrip() for l in lines)
