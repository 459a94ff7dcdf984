"""The class report: ``report.html``, one self-contained page (charts as inline SVG) grouped by
assignment: the totals' histogram, the verdicts per question (counting students), per question the most common
message, and the students with their totals and links to their feedback pages (``feedback/<student>/<a>.html``).
Also the plain-text summary printed by the CLI."""
from __future__ import annotations

import html
import math
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
align-items:flex-start}.figs svg{max-width:100%;height:auto;border:1px solid #ddd}.muted{color:#666}.note{color:#444;
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


# -- charts: inline SVG written here (drawing them with matplotlib cost the grader about a second per batch) --------

def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _ticks(lo: float, hi: float, most: int = 8, integer: bool = False) -> list[float]:
    """Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten, at most ``most`` + 1 ticks."""
    span = max(hi - lo, 1e-9)
    mag = 10 ** math.floor(math.log10(span / most))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if span / (m * mag) <= most)
    if integer:
        step = max(1, round(step)) if step >= 1 else 1
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _svg(width: int, height: int, label: str, body: list[str], defs: str = "") -> str:
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' viewBox='0 0 {width} "
            f"{height}' role='img' aria-label='{_e(label)}' font-family='sans-serif' font-size='11'>"
            f"<title>{_e(label)}</title>{defs}<rect width='{width}' height='{height}' fill='#fff'/>"
            + "".join(body) + "</svg>")


def _text(x: float, y: float, text: str, anchor: str = "middle", size: int | None = None, extra: str = "") -> str:
    font = f" font-size='{size}'" if size else ""
    return f"<text x='{_num(x)}' y='{_num(y)}' text-anchor='{anchor}'{font}{extra}>{_e(text)}</text>"


def _histogram(a: str, scores: dict[str, float], top: float) -> str:
    """The totals of an assignment's students as a histogram (bins of half a point up to 20 points), with the
    mean as a dashed line."""
    width, height, left, right, up, down = 420, 290, 46, 12, 26, 40
    top = top or 1.0
    step = 0.5 if top <= 20 else top / 40
    edges = [-step / 2 + i * step for i in range(int(top / step) + 2)]
    vals = list(scores.values())
    counts = [0] * (len(edges) - 1)
    for v in vals:  # numpy's bins: [e_i, e_i+1), the last one closed
        for i in range(len(counts)):
            if edges[i] <= v < edges[i + 1] or (i == len(counts) - 1 and v == edges[-1]):
                counts[i] += 1
                break
    ymax = max(max(counts, default=0), 1)
    yticks = _ticks(0, ymax, 6, integer=True)
    ymax = max(ymax, yticks[-1])
    pw, ph = width - left - right, height - up - down
    sx = lambda x: left + (x - edges[0]) / (edges[-1] - edges[0]) * pw  # noqa: E731
    sy = lambda y: up + ph - y / ymax * ph  # noqa: E731
    title = f"totals of {len(vals)} student{'s' * (len(vals) != 1)} (out of {_fmt(top)} points)"
    body = [_text(width / 2, 16, title, size=12)]
    for t in yticks:
        body.append(f"<line x1='{left}' x2='{left + pw}' y1='{_num(sy(t))}' y2='{_num(sy(t))}' stroke='#eee'/>")
        body.append(_text(left - 5, sy(t) + 4, f"{t:g}", "end"))
    for i, c in enumerate(counts):
        if c:
            x0, x1 = sx(edges[i]), sx(edges[i + 1])
            body.append(f"<rect x='{_num(x0)}' y='{_num(sy(c))}' width='{_num(x1 - x0)}' "
                        f"height='{_num(sy(0) - sy(c))}' fill='{HIST_COLOR}' stroke='#fff'><title>{c} student{'s' * (c != 1)} with "
                        f"{_fmt(edges[i] + step / 2)}</title></rect>")
    for t in _ticks(0, top, 8):
        body.append(f"<line x1='{_num(sx(t))}' x2='{_num(sx(t))}' y1='{up + ph}' y2='{up + ph + 4}' stroke='#333'/>")
        body.append(_text(sx(t), up + ph + 15, _fmt(t)))
    body.append(f"<rect x='{left}' y='{up}' width='{pw}' height='{ph}' fill='none' stroke='#333'/>")
    mean = statistics.mean(vals)
    body.append(f"<line x1='{_num(sx(mean))}' x2='{_num(sx(mean))}' y1='{up}' y2='{up + ph}' stroke='#000' "
                "stroke-dasharray='4 3'/>")
    body.append(f"<line x1='{left + 8}' x2='{left + 28}' y1='{up + 12}' y2='{up + 12}' stroke='#000' "
                "stroke-dasharray='4 3'/>")
    body.append(_text(left + 33, up + 16, f"mean {mean:.2f}", "start", 10))
    body.append(_text(left + pw / 2, height - 6, "total points"))
    body.append(_text(12, up + ph / 2, "number of students", extra=f" transform='rotate(-90 12 {_num(up + ph / 2)})'"))
    return _svg(width, height, f"{a}: histogram of total points; bars count students", body)


def _pattern_id(verdict: str) -> str:
    return "h-" + re.sub(r"[^a-z0-9]+", "-", verdict.lower())


def _verdict_chart(a: str, order: list[str], counts: dict[str, Counter], n_students: int) -> str:
    """One horizontal bar per question, split by how many students got each verdict on it."""
    labels = [f"Q{i + 1} {q}" for i, q in enumerate(order)]
    used = [v for v in V.VERDICTS if any(counts[q][v] for q in order)]
    left = 16 + 6 * max((len(t) for t in labels), default=4)
    legend_w = 24 + 6 * max((len(v) for v in used), default=4)
    bar, gap, up, down = 18, 8, 28, 44
    pw = max(200, 740 - left - legend_w - 16)
    width = left + pw + legend_w + 16
    height = max(up + len(order) * (bar + gap) + down, up + 16 * len(used) + 10)
    total = max(n_students, 1)
    sx = lambda x: left + x / total * pw  # noqa: E731
    defs = []
    for v in used:
        colour, hatch = STYLES[v]
        if hatch:
            lines = "<path d='M0,6 L6,0' stroke='#fff' stroke-width='1.2'/>"
            if hatch == "xx":
                lines += "<path d='M0,0 L6,6' stroke='#fff' stroke-width='1.2'/>"
            defs.append(f"<pattern id='{_pattern_id(v)}' width='6' height='6' patternUnits='userSpaceOnUse'>"
                        f"<rect width='6' height='6' fill='{colour}'/>{lines}</pattern>")
    fill = {v: (f"url(#{_pattern_id(v)})" if STYLES[v][1] else STYLES[v][0]) for v in used}
    body = [_text(left + pw / 2, 16, "verdict per question", size=12)]
    for t in _ticks(0, total, 8, integer=True):
        body.append(f"<line x1='{_num(sx(t))}' x2='{_num(sx(t))}' y1='{up - 4}' "
                    f"y2='{up + len(order) * (bar + gap)}' stroke='#eee'/>")
        body.append(_text(sx(t), up + len(order) * (bar + gap) + 14, f"{t:g}"))
    for i, (q, label) in enumerate(zip(order, labels)):
        y = up + i * (bar + gap) + gap / 2
        body.append(_text(left - 6, y + bar / 2 + 4, label, "end"))
        x = 0
        for v in used:
            c = counts[q][v]
            if c:
                body.append(f"<rect x='{_num(sx(x))}' y='{_num(y)}' width='{_num(sx(x + c) - sx(x))}' height='{bar}' "
                            f"fill='{fill[v]}' stroke='#fff' stroke-width='0.6'><title>{_e(label)}: {_e(v)}, {c} "
                            f"student{'s' * (c != 1)}</title></rect>")
                x += c
    body.append(_text(left + pw / 2, up + len(order) * (bar + gap) + 32,
                      "number of students (one verdict per student and question)"))
    lx = left + pw + 16
    for j, v in enumerate(used):
        y = up + j * 16
        body.append(f"<rect x='{lx}' y='{y}' width='12' height='12' fill='{fill[v]}' stroke='#666' "
                    "stroke-width='0.5'/>")
        body.append(_text(lx + 17, y + 10, v, "start", 10))
    return _svg(width, height, f"{a}: verdict per question; bars count students", body,
                f"<defs>{''.join(defs)}</defs>" if defs else "")


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
             f"<div class='figs'>{_histogram(a, scores, top)}{_verdict_chart(a, order, counts, n)}</div>",
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
