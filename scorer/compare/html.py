"""The HTML report: one self-contained file with the leaderboard, a gallery and a side-by-side view.

Safety: the page shows drawings as PNGs rendered here, through the isolated worker pool
(:mod:`scorer.isolation`), never as live SVG markup; every string that came from a file, a
prompt or a model name is HTML-escaped; and a Content-Security-Policy allows only this
page's own script and style (by hash) and ``data:`` images, so even a mistake in escaping
could not run injected script or fetch anything.

The page needs no network: no external assets, fonts or scripts. The same inputs give the
same bytes (no timestamps), so reports can be diffed and committed.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import io
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass
from typing import Any

from PIL import Image

from ..config import Config
from ..errors import ItemError
from ..inputs import ScoreItem
from ..isolation import WorkerPool
from ..load import load_svg
from ..record import Provenance, ScoreResult, provenance_differences
from ..render import render
from .leaderboard import Interval, Labelled, Leaderboard

THUMBNAIL_PX = 256  # longer side; enough to judge a drawing by eye, small enough for hundreds


@dataclass(frozen=True)
class Thumbnail:
    """A drawing's picture for the page: a PNG ``data:`` URI, or why there is none."""

    uri: str | None = None
    problem: str | None = None  # "file changed since it was scored", or an error


def make_thumbnailer(config: Config, size: int) -> Callable[[bytes], bytes]:
    """The per-file function run in a worker: SVG bytes → PNG bytes (on white)."""

    def thumbnail(data: bytes) -> bytes:
        raster = render(load_svg(data, config.limits), size, backend=config.render.backend)
        buffer = io.BytesIO()
        Image.fromarray(raster.on_white).save(buffer, "PNG", optimize=True)
        return buffer.getvalue()

    return thumbnail


def render_thumbnails(
    records: Iterable[ScoreResult], config: Config, *, jobs: int | None = None, size: int = THUMBNAIL_PX
) -> dict[str, Thumbnail]:
    """A thumbnail per distinct ``path`` among the ``records`` that scored, rendered with
    ``config``'s limits, renderer, time and memory bounds. A file gone or changed since
    scoring says so. Error rows get none: their record already says why there is no picture."""
    expected = {r.path: r.sha256 for r in records if r.path and r.ok}
    files = {path: ScoreItem(path, "").read(config.limits) for path in expected}
    readable = [path for path, file in files.items() if file.error is None]
    thumbnails = {path: Thumbnail(problem=f"{file.error.code}: {file.error.message}") for path, file in files.items() if file.error}
    if readable:
        factory = functools.partial(make_thumbnailer, config, size)
        jobs = jobs or os.cpu_count() or 1
        with WorkerPool(factory, jobs=jobs, timeout_s=config.render.timeout_s, memory_mb=config.render.memory_mb) as pool:
            for path, outcome in zip(readable, pool.imap(files[p].data for p in readable), strict=True):
                if isinstance(outcome, ItemError):
                    thumbnails[path] = Thumbnail(problem=f"{outcome.code}: {outcome.message}")
                    continue
                changed = "the file changed since it was scored" if files[path].sha256 != expected[path] else None
                thumbnails[path] = Thumbnail("data:image/png;base64," + base64.b64encode(outcome).decode("ascii"), changed)
    return thumbnails


# -- the page ----------------------------------------------------------------------------------


def build_html(
    labelled: Sequence[Labelled],
    board: Leaderboard,
    thumbnails: Mapping[str, Thumbnail],
    *,
    title: str = "svgscore report",
) -> str:
    """The whole page as one string."""
    models = [m.model for m in board.models]
    prompts = sorted({r.prompt for _, r in labelled})
    cards = "\n".join(_card(i, model, record, thumbnails.get(record.path or "")) for i, (model, record) in enumerate(labelled))
    body = f"""<header>
<h1>{_e(title)}</h1>
<p>{len(labelled)} drawings · {len(models)} models · {len(prompts)} prompts</p>
{_judges(board.provenance)}
</header>
<section id="leaderboard">
<h2>Leaderboard</h2>
{_leaderboard_table(board)}
{_verdicts(board)}
<h3>Pairwise: P(row draws better than column) on shared prompts</h3>
{_pair_matrix(board)}
</section>
<section id="gallery">
<h2>Gallery</h2>
<div class="controls">
<label>model <select id="f-model"><option value="">all</option>{_options(models)}</select></label>
<label>prompt <select id="f-prompt"><option value="">all</option>{_options(prompts)}</select></label>
<label>search <input id="f-search" type="search" placeholder="path, model or prompt"></label>
<label>min score <input id="f-min" type="number" min="0" max="100" step="1"></label>
<label>sort <select id="f-sort">
<option value="score-desc">score, best first</option><option value="score-asc">score, worst first</option>
<option value="model">model</option><option value="prompt">prompt</option><option value="path">path</option>
</select></label>
<span id="f-count"></span>
</div>
<div id="cards">
{cards}
</div>
</section>
<section id="side">
<h2>Side by side</h2>
<div class="controls">
<label>A <select id="side-a">{_options(models, selected=models[0] if models else None)}</select></label>
<label>B <select id="side-b">{_options(models, selected=models[1] if len(models) > 1 else None)}</select></label>
</div>
<div id="side-rows"></div>
</section>"""
    policy = (
        f"default-src 'none'; img-src data:; style-src '{_csp_hash(_STYLE)}'; script-src '{_csp_hash(_SCRIPT)}'; "
        "base-uri 'none'; form-action 'none'"
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
{body}
<script>{_SCRIPT}</script>
</body>
</html>
"""


def write_report(
    labelled: Sequence[Labelled],
    board: Leaderboard,
    config: Config,
    stream: Any,
    *,
    jobs: int | None = None,
    title: str = "svgscore report",
) -> None:
    """Render the thumbnails and write the page to ``stream``."""
    thumbnails = render_thumbnails([record for _, record in labelled], config, jobs=jobs)
    stream.write(build_html(labelled, board, thumbnails, title=title))


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _csp_hash(source: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii")


def _options(values: Iterable[str], selected: str | None = None) -> str:
    return "".join(f'<option value="{_e(v)}"{" selected" if v == selected else ""}>{_e(v)}</option>' for v in values)


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _ci_text(interval: Interval | None, spec: str) -> str:
    return "—" if interval is None else f"{interval.low:{spec}}–{interval.high:{spec}}"


def _leaderboard_table(board: Leaderboard) -> str:
    head = "".join(
        f'<th data-type="{kind}">{_e(name)}</th>'
        for name, kind in [("#", "num"), ("model", "text"), ("n", "num"), ("errors", "num"), ("prompts", "num"), ("mean", "num"), ("95% CI", "num")]
        + [(name, "num") for name in board.components]
    )
    # The bars share one axis spanning the data, so narrow intervals stay visible.
    ends = [v for m in board.models for v in (m.mean, *(astuple(m.interval) if m.interval else ())) if v is not None]
    axis_low, axis_high = (min(ends), max(ends)) if ends else (0.0, 100.0)
    pad = max(0.5, (axis_high - axis_low) * 0.05)
    axis_low, axis_high = max(0.0, axis_low - pad), min(100.0, axis_high + pad)

    def at(value: float) -> float:
        return 100 * (value - axis_low) / (axis_high - axis_low)

    rows = []
    for rank, m in enumerate(board.models, start=1):
        # Positions in % of the bar, applied by the script (inline style attributes would need a looser CSP).
        span = f' data-left="{at(m.interval.low):.2f}" data-width="{at(m.interval.high) - at(m.interval.low):.2f}"' if m.interval else ""
        mark = f' data-mark="{at(m.mean):.2f}"' if m.mean is not None else ""
        bar = f'<span class="bar" title="axis {axis_low:.1f}–{axis_high:.1f}"{span}{mark}><i></i><b></b></span>'
        cells = [
            (rank, str(rank)), (m.model, _e(m.model)), (m.n, str(m.n)), (m.errors, str(m.errors)), (m.prompts, str(m.prompts)),
            (_fmt(m.mean, ""), _fmt(m.mean, ".1f")), (m.interval.low if m.interval else "", f"{_ci_text(m.interval, '.1f')} {bar}"),
        ] + [(_fmt(m.components.get(c), ""), _fmt(m.components.get(c), ".2f")) for c in board.components]  # fmt: skip
        rows.append("<tr>" + "".join(f'<td data-v="{_e(v)}">{text}</td>' for v, text in cells) + "</tr>")
    return f'<div class="wide"><table class="board sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _judges(judges: Sequence[Provenance]) -> str:
    """What made the scores, every field, one column per judge (several only when the comparison
    was allowed to mix them); fields that differ between judges are marked."""
    if not judges:
        return ""
    flat = [{**p.judge(), **p.setting()} for p in judges]
    fields = list(dict.fromkeys(k for f in flat for k in f))
    differing = {d.what for other in judges[1:] for d in provenance_differences(judges[0], other)}
    head = "".join(f"<th>judge {i}</th>" for i in range(1, len(judges) + 1)) if len(judges) > 1 else "<th></th>"
    rows = "".join(
        ("<tr class=\"differs\">" if what in differing else "<tr>")
        + f"<th>{_e(what)}</th>"
        + "".join(f"<td>{_e(_value(f.get(what)))}</td>" for f in flat)
        + "</tr>"
        for what in fields
    )
    summary = "judge: " + _e(judges[0].summary()) if len(judges) == 1 else f"{len(judges)} different provenances: the marked rows differ"
    return f'<details id="provenance"{" open" if len(judges) > 1 else ""}><summary>{summary}</summary><table class="provenance"><thead><tr><th>provenance</th>{head}</tr></thead><tbody>{rows}</tbody></table></details>'


def _value(value: object) -> str:
    return "—" if value is None else str(value)


def _verdicts(board: Leaderboard) -> str:
    lines = board.sentences()
    return '<ul class="verdicts">' + "".join(f"<li>{_e(line)}</li>" for line in lines) + "</ul>"


def _pair_matrix(board: Leaderboard) -> str:
    models = [m.model for m in board.models]
    found = {(p.a, p.b): (p, False) for p in board.pairs} | {(p.b, p.a): (p, True) for p in board.pairs}
    rows = []
    for row in models:
        cells = []
        for column in models:
            if row == column:
                cells.append('<td class="self"></td>')
                continue
            pair, flipped = found[(row, column)]
            win = None if pair.win_probability is None else (1 - pair.win_probability if flipped else pair.win_probability)
            interval = pair.win_interval
            if interval is not None and flipped:
                interval = Interval(round(1 - interval.high, 4), round(1 - interval.low, 4))
            css = "sep" if pair.separable else "tie"
            cells.append(f'<td class="{css}" title="{_e(pair.verdict)}">{_fmt(win, ".2f")}<small>{_ci_text(interval, ".2f")}</small></td>')
        rows.append(f"<tr><th>{_e(row)}</th>{''.join(cells)}</tr>")
    head = "".join(f"<th>{_e(m)}</th>" for m in models)
    return f'<div class="wide"><table class="pairs"><thead><tr><th></th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _card(index: int, model: str, record: ScoreResult, thumbnail: Thumbnail | None) -> str:
    path, prompt = record.path or "<memory>", record.prompt
    score = record.score if record.ok else None
    if thumbnail is not None and thumbnail.uri:
        picture = f'<img src="{thumbnail.uri}" alt="render of {_e(path)}">'
    else:
        problem = thumbnail.problem if thumbnail else (record.error.code if record.error else "no file to render")
        picture = f'<div class="noimg">{_e(problem)}</div>'
    notes = []
    if record.error:
        notes.append(f'<p class="error">{_e(record.error.code)}: {_e(record.error.message)}</p>')
    if thumbnail is not None and thumbnail.uri and thumbnail.problem:
        notes.append(f'<p class="warn">{_e(thumbnail.problem)}</p>')
    components = "".join(
        f"<tr><td>{_e(name)}</td><td>{_fmt(c.value, '.2f')}</td><td>{_fmt(c.weight, 'g')}</td><td>{_e(c.explanation)}</td></tr>"
        for name, c in record.components.items()
    )
    details = (
        f"<details><summary>components</summary><table><tr><th>check</th><th>value</th><th>weight</th><th>why</th></tr>{components}</table></details>"
        if components
        else ""
    )
    return (
        f'<article class="card" data-i="{index}" data-model="{_e(model)}" data-prompt="{_e(prompt)}" '
        f'data-path="{_e(path)}" data-score="{-1 if score is None else score}">'
        f'{picture}<div class="score">{_fmt(score, ".1f")}</div>'
        f'<div class="model">{_e(model)}</div><div class="prompt">{_e(prompt)}</div><div class="path">{_e(path)}</div>'
        f'{"".join(notes)}{details}</article>'
    )


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1400px;padding:0 16px;color:#222}
h1{margin:16px 0 4px}header p{margin:0;color:#666}
#provenance summary{color:#666;cursor:pointer;overflow-wrap:anywhere}.provenance td,.provenance th{text-align:left;font-size:12px}.provenance tr.differs{background:#fec}
.wide{overflow-x:auto}table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}
td:nth-child(2),th:nth-child(2){text-align:left}
.sortable th{cursor:pointer;user-select:none}.sortable th[aria-sort=ascending]::after{content:" ▲"}.sortable th[aria-sort=descending]::after{content:" ▼"}
.bar{display:inline-block;position:relative;width:120px;height:10px;background:#eee;vertical-align:middle;margin-left:6px}
.bar i{position:absolute;top:0;bottom:0;background:#9bc}.bar b{position:absolute;top:-2px;bottom:-2px;width:2px;background:#124}
.verdicts li{margin:2px 0}
.pairs td{text-align:center}.pairs td small{display:block;color:#777;font-size:11px}.pairs th{text-align:left}
.pairs td.sep{background:#dfe}.pairs td.tie{background:#f6f6f6}.pairs td.self{background:#fff}
.controls{display:flex;flex-wrap:wrap;gap:12px;align-items:center;margin:8px 0}.controls select{max-width:320px}
#cards,.side-col{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:12px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px;overflow:hidden;background:#fff}
.card img,.noimg{display:block;width:100%;aspect-ratio:1;object-fit:contain;background:#fff}
.noimg{display:flex;align-items:center;justify-content:center;background:#fee;color:#a00;font-size:12px;text-align:center;overflow:hidden}
.score{font-size:20px;font-weight:600}.model{font-weight:600}.prompt,.path{color:#666;font-size:12px;overflow-wrap:anywhere}
.error{color:#a00;font-size:12px;overflow-wrap:anywhere}.warn{color:#a60;font-size:12px}
details table{font-size:11px}details td{white-space:normal;text-align:left}
.side-row{border-top:2px solid #ccc;padding:8px 0}.side-pair{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.side-pair h4{margin:4px 0}
"""

_SCRIPT = """
(function () {
  "use strict";
  var byId = function (id) { return document.getElementById(id); };
  var box = byId("cards");
  var cards = Array.prototype.slice.call(box.children);
  var text = function (card) { return (card.dataset.path + " " + card.dataset.model + " " + card.dataset.prompt).toLowerCase(); };
  var byField = function (field) {
    return function (a, b) { return a.dataset[field] < b.dataset[field] ? -1 : a.dataset[field] > b.dataset[field] ? 1 : 0; };
  };
  var orders = {
    "score-desc": function (a, b) { return b.dataset.score - a.dataset.score; },
    "score-asc": function (a, b) { return a.dataset.score - b.dataset.score; },
    "model": byField("model"), "prompt": byField("prompt"), "path": byField("path")
  };

  function filterCards() {
    var model = byId("f-model").value, prompt = byId("f-prompt").value;
    var needle = byId("f-search").value.trim().toLowerCase(), min = parseFloat(byId("f-min").value);
    var shown = 0;
    cards.forEach(function (card) {
      var keep = (!model || card.dataset.model === model) && (!prompt || card.dataset.prompt === prompt) &&
        (!needle || text(card).indexOf(needle) >= 0) && (isNaN(min) || Number(card.dataset.score) >= min);
      card.hidden = !keep;
      if (keep) { shown += 1; }
    });
    byId("f-count").textContent = shown + " of " + cards.length + " shown";
  }

  function sortCards() {
    var order = orders[byId("f-sort").value];
    cards.slice().sort(function (a, b) { return order(a, b) || a.dataset.i - b.dataset.i; })
      .forEach(function (card) { box.appendChild(card); });
  }

  function sortTable(table, column, header) {
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    var numeric = header.dataset.type === "num";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var key = function (row) {
      var v = row.cells[column].dataset.v;
      return numeric ? (v === "" ? -Infinity : Number(v)) : v;
    };
    rows.sort(function (a, b) { var x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1); });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) { cell.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }

  function sideBySide() {
    var a = byId("side-a").value, b = byId("side-b").value, out = byId("side-rows");
    out.textContent = "";
    var prompts = {};
    cards.forEach(function (card) {
      var d = card.dataset;
      if (d.model !== a && d.model !== b) { return; }
      var entry = prompts[d.prompt] || (prompts[d.prompt] = { a: [], b: [] });
      if (d.model === a) { entry.a.push(card); }
      if (d.model === b) { entry.b.push(card); }
    });
    var shared = Object.keys(prompts).filter(function (p) { return prompts[p].a.length && prompts[p].b.length; }).sort();
    if (!shared.length) {
      var none = document.createElement("p");
      none.textContent = "These two models share no prompt.";
      out.appendChild(none);
      return;
    }
    shared.forEach(function (prompt) {
      var row = document.createElement("div"), title = document.createElement("h3"), pair = document.createElement("div");
      row.className = "side-row"; pair.className = "side-pair";
      title.textContent = prompt;
      [[a, prompts[prompt].a], [b, prompts[prompt].b]].forEach(function (side) {
        var column = document.createElement("div"), heading = document.createElement("h4"), grid = document.createElement("div");
        var mean = side[1].reduce(function (s, c) { return s + Math.max(0, Number(c.dataset.score)); }, 0) / side[1].length;
        heading.textContent = side[0] + ": mean " + mean.toFixed(1) + " over " + side[1].length;
        grid.className = "side-col";
        side[1].forEach(function (card) { var copy = card.cloneNode(true); copy.hidden = false; grid.appendChild(copy); });
        column.appendChild(heading); column.appendChild(grid); pair.appendChild(column);
      });
      row.appendChild(title); row.appendChild(pair); out.appendChild(row);
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll(".bar"), function (bar) {
    if (bar.dataset.left) { bar.firstChild.style.left = bar.dataset.left + "%"; bar.firstChild.style.width = bar.dataset.width + "%"; }
    if (bar.dataset.mark) { bar.lastChild.style.left = bar.dataset.mark + "%"; }
  });
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
      header.addEventListener("click", function () { sortTable(table, column, header); });
    });
  });
  ["f-model", "f-prompt", "f-search", "f-min"].forEach(function (id) {
    byId(id).addEventListener("input", filterCards);
    byId(id).addEventListener("change", filterCards);  // selects changed by script or older browsers fire only this
  });
  byId("f-sort").addEventListener("change", sortCards);
  byId("side-a").addEventListener("change", sideBySide);
  byId("side-b").addEventListener("change", sideBySide);
  sortCards();
  filterCards();
  sideBySide();
}());
"""
