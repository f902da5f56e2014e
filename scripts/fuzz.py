"""Coverage-guided fuzzing of load → render → measure with atheris (libFuzzer), for `make fuzz`.

    python scripts/fuzz.py [--seconds 180] [--out build/fuzz]

The fuzz target is the per-file analysis a worker runs (``scorer.pipeline.make_analyzer`` under
``scorer.isolation.run_task``), in-process so that libFuzzer sees coverage of svgscore, cairosvg,
tinycss2 and cssselect2, with the worker's limits: ``-rss_limit_mb`` = ``render.memory_mb`` and
``-timeout`` = twice ``render.timeout_s`` (a unit may be analysed twice, see below). Inputs are whole files (plain or gzip), seeded from
``fixtures/`` and the resvg test suite (``../shared/corpus/resvg-tests/``, when present), and mutated
both byte-wise and by structure: deep nesting, ``<use>`` graphs (with cycles), paths and transforms
with extreme numbers, CSS, entities and DOCTYPEs, other encodings, gzip.

A finding is
  * an uncaught exception: ``run_task`` answers ``internal_error`` (a bug met by the input),
  * a non-finite number in a record, or a result that differs when the same input is analysed
    again in the same process (scores must not depend on what a worker did before),
  * a hang past ``render.timeout_s`` or memory past ``render.memory_mb`` in-process,
and each is replayed through the isolated :class:`~scorer.Scorer` twice: a hang or an out-of-memory
that the worker limits turn into a ``render_timeout``/``render_error`` row, the same both times, is
*contained* (the limit did its job, as for ``fixtures/hostile/res_huge_arc.svg``); anything else — an
``internal_error`` row, two different records, no row — is a defect. Fixed defects are kept as
regression fixtures in ``fixtures/fuzz/`` (tests/test_fuzz_fixtures.py); this script checks them first.

Prints: executions, coverage (libFuzzer's edges and features), corpus size, findings by kind,
contained, unfixed, and the regression fixtures passing. Exit 1 if any finding is unfixed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import random
import re
import subprocess
import sys
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESVG_TESTS = REPO.parent / "shared" / "corpus" / "resvg-tests" / "tests"
FIXTURES = REPO / "fixtures"
REGRESSIONS = FIXTURES / "fuzz"
PROMPT = "a pelican riding a bicycle"  # names every subject, so every subject check runs
# The default config's per-file measures; CLIP is batched (it never runs in a worker), so it is off.
CONFIG = {"clip": {"enabled": False}}
MAX_LEN = 131072
RESVG_SEEDS = 100  # a seeded sample: every seed is run once at each (re)start
EXTREME = ("1e308", "-1e308", "1e-320", "3.4e38", "1e999", "-0", "0", "nan", "inf", "1e30", "9007199254740993", "-2147483649", ".5e-7")


# -- the target (runs in the atheris child) -----------------------------------------------


class Finding(Exception):
    """What the fuzzer must report: libFuzzer saves the input as a crash artifact."""


def make_target():
    """The per-file analysis with its oracle; imports are instrumented for coverage."""
    import atheris

    with atheris.instrument_imports(include=["scorer", "cairosvg", "cssselect2", "tinycss2"]):
        import cairosvg.parser  # noqa: F401  (imported lazily by the renderer: instrument it now)
        import cairosvg.surface  # noqa: F401

        from scorer.combine import combine
        from scorer.config import load_config
        from scorer.errors import InternalError
        from scorer.isolation import run_task
        from scorer.pipeline import Analysis, FileTask, make_analyzer

    config = load_config(CONFIG)
    analyze = make_analyzer(config)
    memory_mb = config.render.memory_mb

    def outcome(data: bytes) -> str:
        result = run_task(analyze, FileTask(data, PROMPT), memory_mb)
        if isinstance(result, InternalError):
            raise Finding(f"internal_error: {result.message}")
        if not isinstance(result, Analysis):
            return f"{result.code}: {result.message}"
        score, _ = combine(result.components, config.gates)
        record = {"score": score, "render": result.render.__dict__, "components": {k: c.__dict__ for k, c in result.components.items()}}
        try:
            return json.dumps(record, sort_keys=True, allow_nan=False, default=str)
        except ValueError as exc:
            raise Finding(f"non-finite number in the record: {exc}: {str(record)[:300]}") from None

    def test_one_input(data: bytes) -> None:
        first = outcome(data)
        # Half of the inputs again: a worker analyses many files, so state left by one must not move the next.
        if hashlib.sha256(data).digest()[0] & 1 and outcome(data) != first:
            raise Finding("the same input analysed twice in one process gave two results")

    return test_one_input


def mutate(data: bytes, max_size: int, seed: int) -> bytes:
    """Half byte-level (libFuzzer's own), half structure-aware SVG edits."""
    import atheris

    rng = random.Random(seed)
    if rng.random() < 0.5:
        return atheris.Mutate(data, max_size)
    text = rng.choice(_EDITS)(as_text(data), rng)
    out = _encode(text, rng)
    return out[:max_size]


def as_text(data: bytes) -> str:
    """An input as SVG text to edit: gunzipped when it says it is gzip, as bytes when that fails
    (a byte-level mutation leaves gzip's magic on a broken stream: zlib's own error, not OSError)."""
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data).decode("utf-8", "replace")
        except (OSError, EOFError, zlib.error):
            return data.decode("latin-1")
    return data.decode("utf-8", "replace")


def _insert(text: str, fragment: str, rng: random.Random) -> str:
    """``fragment`` after a random start tag (or before ``</svg>``)."""
    points = [m.end() for m in re.finditer(r"<[a-zA-Z][^<>]*?(?<!/)>", text)]
    if not points:
        return f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">{fragment}{text}</svg>'
    at = rng.choice(points)
    return text[:at] + fragment + text[at:]


def _nest(text: str, rng: random.Random) -> str:
    depth = rng.choice((5, 50, 200, 300, 1000))
    tag = rng.choice(("g", "svg", "a", "switch", "symbol", "mask", "clipPath", "pattern", "marker"))
    extra = rng.choice(("", ' transform="scale(1.01)"', ' opacity="0.99"', ' filter="url(#f)"', ' clip-path="url(#c)"'))
    return _insert(text, f"<{tag}{extra}>" * depth + '<rect width="10" height="10"/>' + f"</{tag}>" * depth, rng)


def _use_graph(text: str, rng: random.Random) -> str:
    nodes = rng.randint(2, 12)
    parts = ['<defs><path id="u0" d="M0 0 L10 10 Z"/>']
    for i in range(1, nodes):
        refs = "".join(f'<use href="#u{rng.randrange(0, nodes if rng.random() < 0.2 else i)}" x="{rng.randint(-5, 5)}"/>' for _ in range(rng.randint(1, 6)))
        parts.append(f'<g id="u{i}">{refs}</g>')
    parts.append(f'</defs><use xlink:href="#u{nodes - 1}"/>')
    return _insert(text, "".join(parts), rng)


def _extreme_numbers(text: str, rng: random.Random) -> str:
    numbers = list(re.finditer(r"-?\d+(\.\d+)?", text))
    for match in rng.sample(numbers, min(len(numbers), rng.randint(1, 4))):
        text = text[: match.start()] + rng.choice(EXTREME) + text[match.end() :]
    return text


def _path(text: str, rng: random.Random) -> str:
    commands = []
    for _ in range(rng.randint(1, 12)):
        command = rng.choice("MLHVCSQTAZmlhvcsqtaz")
        arity = {"M": 2, "L": 2, "H": 1, "V": 1, "C": 6, "S": 4, "Q": 4, "T": 2, "A": 7, "Z": 0}[command.upper()]
        commands.append(command + " ".join(rng.choice(EXTREME + ("1", "2", "50")) for _ in range(arity)))
    stroke = rng.choice(("", ' stroke="#000" stroke-width="1e30"', ' stroke-dasharray="1e-300 1e-300" stroke="red"', ' marker-end="url(#m)"'))
    return _insert(text, f'<path d="{" ".join(commands)}"{stroke}/>', rng)


def _css(text: str, rng: random.Random) -> str:
    rules = [
        "* { transform: scale(1e30) }", "@import url(http://127.0.0.1/x.css);", "rect { fill: url(#nowhere) }",
        "g > g > g { stroke-width: 1e308 }", ":root { --x: var(--x) }", "path { fill: rgb(300, -1, nan) }",
        "circle { r: calc(1e308 * 10) }", "@font-face { src: url(file:///etc/passwd) }", "* { font-size: 1e300px }",
        ".a .b .c .d .e .f .g .h { opacity: 0 }", "@media (min-width: 0) { * { display: none } }", "svg|rect { fill: #zzz }",
        "[" * 50, "} } } {", "*::before { content: '\\0' }",
    ]  # fmt: skip
    style = " ".join(rng.sample(rules, rng.randint(1, 4)))
    inline = rng.choice(("", ' style="fill: url(#p); stroke-width: -1; transform: rotate(nan)"'))
    return _insert(text, f"<style>{style}</style><rect class='a b' width='5' height='5'{inline}/>", rng)


def _entities(text: str, rng: random.Random) -> str:
    body = text.split("?>", 1)[-1] if text.lstrip().startswith("<?xml") else text
    doctype = rng.choice((
        '<!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>',
        '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">',
        '<!DOCTYPE svg [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>',
        '<!DOCTYPE svg [<!ELEMENT svg ANY><!ATTLIST svg width CDATA "1e9">]>',
        "<!DOCTYPE svg>",
    ))  # fmt: skip
    reference = rng.choice(("", "&a;", "&#0;", "&#x110000;", "&lt;&gt;&amp;", "&#xD800;"))
    return doctype + _insert(body, reference, rng)


def _attributes(text: str, rng: random.Random) -> str:
    name, value = rng.choice((
        ("transform", "matrix(1e308 0 0 1e308 0 0)"), ("transform", "scale(0)"), ("transform", "rotate(1e308) skewX(90)"),
        ("viewBox", "0 0 0 0"), ("viewBox", "-1e308 -1e308 1e308 1e308"), ("width", "1e9"), ("height", "-5"),
        ("stroke-width", "nan"), ("opacity", "-1"), ("r", "1e38"), ("points", "1e308,1e308 -1e308,5"),
        ("href", "data:image/svg+xml;base64,PHN2Zy8+"), ("font-size", "0"), ("preserveAspectRatio", "xMidYMid slice"),
    ))  # fmt: skip
    tags = list(re.finditer(r"<([a-zA-Z]+)", text))
    if not tags:
        return text
    match = rng.choice(tags)
    return text[: match.end()] + f' {name}="{value}"' + text[match.end() :]


def _repeat(text: str, rng: random.Random) -> str:
    elements = re.findall(r"<(?:rect|circle|ellipse|path|line|polygon|polyline)\b[^<>]*/>", text)
    if not elements:
        return text
    return _insert(text, rng.choice(elements) * rng.choice((10, 100, 1000)), rng)


_EDITS = (_nest, _use_graph, _extreme_numbers, _path, _css, _entities, _attributes, _repeat)


def _encode(text: str, rng: random.Random) -> bytes:
    choice = rng.random()
    if choice < 0.7:
        data = text.encode("utf-8", "surrogatepass")
    else:
        encoding = rng.choice(("utf-16", "utf-16-le", "utf-32", "latin-1", "utf-8-sig"))
        declared = rng.choice((encoding, "utf-8", "ebcdic", ""))
        if declared and not text.lstrip().startswith("<?xml"):
            text = f'<?xml version="1.0" encoding="{declared}"?>' + text
        data = text.encode(encoding, "replace")
    return gzip.compress(data, mtime=0) if rng.random() < 0.1 else data


def child(argv: list[str]) -> None:
    import atheris

    target = make_target()
    atheris.Setup([sys.argv[0], *argv], target, custom_mutator=mutate)
    atheris.Fuzz()


# -- the driver ---------------------------------------------------------------------------


def seed_corpus(folder: Path, excluded: set[str]) -> int:
    """Fixtures, a seeded sample of the resvg suite, and a few structure-mutated seeds; not those
    that hung or crashed an earlier run (``excluded``: their sha1s), or every restart would meet them first."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted(p for p in FIXTURES.rglob("*") if p.suffix in (".svg", ".svgz"))
    if RESVG_TESTS.is_dir():
        suite = sorted(RESVG_TESTS.rglob("*.svg"))
        sources += random.Random(16).sample(suite, min(RESVG_SEEDS, len(suite)))
    seeds = [source.read_bytes()[:MAX_LEN] for source in sources]
    base = (FIXTURES / "ladder" / "05_crude_pelican_on_bicycle.svg").read_text()
    rng = random.Random(0)
    seeds += [_encode(edit(base, rng), rng)[:MAX_LEN] for edit in _EDITS for _ in range(3)]
    for name in excluded:
        (folder / name).unlink(missing_ok=True)
    kept = 0
    for data in seeds:
        if (name := hashlib.sha1(data).hexdigest()) not in excluded:
            (folder / name).write_bytes(data)
            kept += 1
    return kept


def replay(paths: list[Path]) -> dict[Path, tuple[str, str]]:
    """Each input through the isolated Scorer twice (1 and 2 workers): (verdict, detail)."""
    from scorer import ScoreItem, Scorer

    runs = []
    for jobs in (1, 2):
        with Scorer(CONFIG, jobs=jobs) as scorer:
            runs.append([r.to_dict() for r in scorer.score_items(ScoreItem(str(p), PROMPT) for p in paths)])
    verdicts = {}
    for path, first, second in zip(paths, *runs, strict=True):
        code = (first.get("error") or {}).get("code")
        message = (first.get("error") or {}).get("message", "")
        if first != second:
            verdicts[path] = ("non-deterministic", "two isolated runs gave different records")
        elif code == "internal_error":
            verdicts[path] = ("uncaught exception", message)
        elif code == "render_timeout" or (code == "render_error" and ("out of memory" in message or "died" in message)):
            verdicts[path] = ("contained", f"{code}: {message}")
        else:
            verdicts[path] = ("ok", f"{code}: {message}" if code else f"score {first['score']}")  # e.g. slow only under load
    return verdicts


def fuzz(seconds: float, out: Path) -> int:
    from scorer.config import load_config

    limits = load_config(CONFIG).render
    corpus, findings = out / "corpus", out / "findings"
    findings.mkdir(parents=True, exist_ok=True)
    # libFuzzer names an artifact <kind>-<sha1 of the input>, and corpus files are named by their sha1.
    excluded = {p.name.split("-", 1)[1] for p in findings.iterdir() if not p.suffix}
    seeds = seed_corpus(corpus, excluded)
    before = set(findings.iterdir())
    known = set(before)

    fixtures = sorted(p for p in REGRESSIONS.glob("*") if p.suffix in (".svg", ".svgz"))
    fixed = replay(fixtures) if fixtures else {}
    regressions = {p: v for p, v in fixed.items() if v[0] not in ("ok", "contained")}

    execs, cov, ft, starts = 0, 0, 0, 0
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 5:
        starts += 1
        args = [
            sys.executable, __file__, "--child", f"-max_total_time={int(remaining)}", f"-timeout={math.ceil(2 * limits.timeout_s)}",
            f"-rss_limit_mb={limits.memory_mb}", f"-max_len={MAX_LEN}", f"-artifact_prefix={findings}/", "-print_final_stats=1",
            f"-seed={starts}", str(corpus),
        ]  # fmt: skip
        proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, errors="replace")
        log = proc.stderr
        (out / f"run-{starts}.log").write_text(log)
        if m := re.findall(r"stat::number_of_executed_units: (\d+)", log):
            execs += int(m[-1])
        if m := re.findall(r"cov: (\d+) ft: (\d+)", log):
            cov, ft = max(cov, int(m[-1][0])), max(ft, int(m[-1][1]))
        if proc.returncode == 0:
            break  # the time budget ran out
        new = [p for p in findings.iterdir() if p not in known and not p.suffix]
        if not new:
            print(f"fuzzer stopped without a finding (exit {proc.returncode}); see {out}/run-{starts}.log", file=sys.stderr)
            return 2
        for path in new:
            known.add(path)
            path.with_suffix(".txt").write_text(log[-6000:])  # the traceback or libFuzzer's report
            (corpus / path.name.split("-", 1)[1]).unlink(missing_ok=True)  # a seed that hangs: not again

    # libFuzzer also saves units slower than 10 s (slow-unit-*): figures, not findings.
    new = sorted(p for p in findings.iterdir() if not p.suffix and p not in before)
    found = [p for p in new if not p.name.startswith("slow-unit-")]
    slow = len(new) - len(found)
    verdicts = replay(found) if found else {}
    unfixed = {p: v for p, v in verdicts.items() if v[0] not in ("ok", "contained")}
    # In-process crashes (an exception, a second result) that the isolated runs did not reproduce still count.
    for path, (verdict, detail) in verdicts.items():
        if verdict == "ok" and path.name.startswith("crash-"):
            unfixed[path] = ("in-process only", detail)

    kinds: dict[str, int] = {}
    for path in found:
        kind = path.name.split("-", 1)[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    print(f"fuzz: {seconds:g} s, {starts} libFuzzer run(s), {execs:,} executions ({execs / seconds:.1f}/s)")
    print(f"coverage: {cov:,} edges, {ft:,} features; corpus {len(list(corpus.iterdir())):,} inputs ({seeds} seeds)")
    print(f"findings: {len(found)}" + (f" ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})" if found else ""))
    for path, (verdict, detail) in sorted(verdicts.items()):
        print(f"  {path.name}: {verdict}: {detail[:160]}")
    print(f"contained by the worker limits: {sum(v[0] == 'contained' for v in verdicts.values())}; slow units (> 10 s, not findings): {slow}")
    print(f"unfixed: {len(unfixed)}")
    print(f"fixed (regression fixtures in {REGRESSIONS.relative_to(REPO)}/ passing): {len(fixed) - len(regressions)}/{len(fixed)}")
    for path, (verdict, detail) in regressions.items():
        print(f"  REGRESSION {path.name}: {verdict}: {detail[:160]}")
    return 1 if unfixed or regressions else 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="time budget (default 180)")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "fuzz", help="corpus, findings and logs (default build/fuzz)")
    args = parser.parse_args()
    return fuzz(args.seconds, args.out)


if __name__ == "__main__":
    sys.exit(main())
