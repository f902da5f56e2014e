"""The HTML report: escaping, self-containment, thumbnails, and the page in a real headless Chromium."""

import base64
import dataclasses
import hashlib
import io
import json
import re
import shutil

import pytest
from click.testing import CliRunner
from PIL import Image

from scorer.cli import main
from scorer.compare.html import build_html, render_thumbnails
from scorer.compare.leaderboard import leaderboard, sample_of
from scorer.config import load_config
from scorer.record import ScoreResult

from .conftest import FIXTURES, REPO, STRUCTURAL, svg
from .records import record

STRUCTURAL_CONFIG = str(REPO / "scorer" / "configs" / "structural.yaml")
# Would change the page if it ever ran: as SVG script, as an event handler, as markup in text.
HOSTILE_SVG = svg(
    '<script>window.pwned = "svg script"; document.title = "pwned"</script>'
    '<circle cx="100" cy="200" r="50" fill="none" stroke="black" stroke-width="8"/>'
    '<circle cx="300" cy="200" r="50" fill="none" stroke="black" stroke-width="8"/>'
    '<rect x="100" y="80" width="200" height="60" fill="navy"/>',
    onload="window.pwned = 'onload'; document.title = 'pwned'",
)
HOSTILE_TEXT = '</script><script>window.pwned = "text"</script><img src=x onerror="window.pwned = 1">'
HOSTILE_NAME = "<img src=x onerror=window.pwned=2>.svg"
BROKEN_COUNT = len(list((FIXTURES / "broken").glob("*.svg")))
CARDS = len(list((FIXTURES / "ladder").glob("*.svg"))) + BROKEN_COUNT + 2  # + two hostile drawings


def fake_record(path, score, *, prompt="a pelican riding a bicycle", error=None):
    return ScoreResult.from_dict(record(path, score, prompt=prompt, error=error, message=HOSTILE_TEXT, explanation=HOSTILE_TEXT))


def page(labelled):
    board = leaderboard([sample_of(m, r) for m, r in labelled], resamples=200)
    return build_html(labelled, board, {})


def test_everything_from_files_is_escaped_and_only_our_script_exists():
    labelled = [
        (HOSTILE_TEXT, fake_record(f"runs/{HOSTILE_NAME}", 50.0, prompt=HOSTILE_TEXT)),
        ("plain", fake_record("runs/ok.svg", 70.0)),
        ("plain", fake_record("runs/bad.svg", None, error="parse_error")),
    ]
    html = page(labelled)
    assert html.count("<script") == 1 and html.count("</script>") == 1
    assert "<img src=x" not in html and "onerror=" not in html.replace("onerror=window", "").replace("onerror=&quot;", "")
    assert "&lt;/script&gt;&lt;script&gt;" in html
    # Self-contained: no address to fetch anything from, and a policy that forbids it anyway.
    assert not re.search(r"(src|href)=\"(?!data:)", html) and "http" not in html.lower().replace("http-equiv", "")
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert "default-src 'none'" in policy and "img-src data:" in policy and "'unsafe-inline'" not in policy


def test_same_inputs_same_bytes():
    labelled = [("a", fake_record("a/1.svg", 50.0)), ("a", fake_record("a/2.svg", 60.0)), ("b", fake_record("b/1.svg", 40.0))]
    assert page(labelled) == page(labelled)


def test_thumbnails_come_from_isolated_renders(tmp_path):
    hostile = tmp_path / "hostile.svg"
    hostile.write_text(HOSTILE_SVG)
    changed = tmp_path / "changed.svg"
    changed.write_text(HOSTILE_SVG)
    records = [
        dataclasses.replace(fake_record(str(hostile), 50.0), sha256=hashlib.sha256(HOSTILE_SVG.encode()).hexdigest()),
        dataclasses.replace(fake_record(str(changed), 50.0), sha256="stale"),
        fake_record(str(tmp_path / "gone.svg"), 50.0),
        fake_record(str(FIXTURES / "broken" / "not_xml.svg"), None, error="parse_error"),
    ]
    thumbs = render_thumbnails(records, load_config(STRUCTURAL), jobs=1, size=64)
    assert set(thumbs) == {str(hostile), str(changed), str(tmp_path / "gone.svg")}  # error rows get none
    good = thumbs[str(hostile)]
    assert good.problem is None and good.uri.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(good.uri.split(",", 1)[1]))) as image:
        assert image.format == "PNG" and max(image.size) == 64
    assert thumbs[str(changed)].uri and thumbs[str(changed)].problem == "the file changed since it was scored"
    assert thumbs[str(tmp_path / "gone.svg")].uri is None and thumbs[str(tmp_path / "gone.svg")].problem.startswith("read_error")


# -- in a real browser -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report_file(tmp_path_factory):
    """A report over real scored files: the ladder, a hostile drawing (under a hostile name and
    prompt) and broken files, each folder one model."""
    root = tmp_path_factory.mktemp("report")
    for folder in ("ladder", "broken"):
        shutil.copytree(FIXTURES / folder, root / folder)
    (root / "hostile").mkdir()
    (root / "hostile" / HOSTILE_NAME).write_text(HOSTILE_SVG)
    (root / "hostile" / "twin.svg").write_text(HOSTILE_SVG)
    manifest = root / "manifest.jsonl"
    manifest.write_text(json.dumps({"path": f"hostile/{HOSTILE_NAME}", "prompt": HOSTILE_TEXT}) + "\n")
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # records keep paths relative to here, as `score` is normally run
        scored = runner.invoke(main, ["score", "ladder", "broken", "hostile", "--manifest", "manifest.jsonl", "--config", STRUCTURAL_CONFIG, "--no-cache", "-j", "2", "-o", "results.jsonl"])
        assert scored.exit_code == 0, scored.output
        made = runner.invoke(main, ["report", "results.jsonl", "--config", STRUCTURAL_CONFIG, "-j", "2", "-o", "report.html", "--resamples", "200"])
        assert made.exit_code == 0, made.output
    return root / "report.html"


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("chromium/chromedriver not found: `make browser` installs the Debian packages chromium and chromium-driver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def loaded(browser, report_file):
    browser.get(report_file.as_uri())
    return browser


def visible_scores(driver):
    return driver.execute_script(
        "return Array.prototype.filter.call(document.querySelectorAll('#cards > .card'), c => !c.hidden).map(c => Number(c.dataset.score))"
    )


def test_page_loads_clean_and_hostile_svg_never_runs(loaded):
    assert loaded.title == "svgscore report"
    assert loaded.execute_script("return typeof window.pwned") == "undefined"
    errors = [entry for entry in loaded.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    assert loaded.execute_script("return document.scripts.length") == 1
    cards = loaded.execute_script("return document.querySelectorAll('#cards > .card').length")
    assert cards == CARDS
    # The hostile drawing is there, as a picture, under its name and prompt shown as text.
    hostile = loaded.execute_script(
        "var c = Array.prototype.find.call(document.querySelectorAll('.card'), c => c.dataset.path.indexOf('onerror') >= 0);"
        "return [c.querySelector('img').src.slice(0, 22), c.querySelector('.prompt').textContent, c.querySelectorAll('svg, script, [onerror]').length]"
    )
    assert hostile == ["data:image/png;base64,", HOSTILE_TEXT, 0]
    assert loaded.find_element("id", "f-count").text == f"{CARDS} of {CARDS} shown"


def test_filter_and_sort(loaded):
    from selenium.webdriver.support.ui import Select

    Select(loaded.find_element("id", "f-model")).select_by_value("broken")
    assert loaded.find_element("id", "f-count").text == f"{BROKEN_COUNT} of {CARDS} shown"
    assert visible_scores(loaded) == [-1] * BROKEN_COUNT
    Select(loaded.find_element("id", "f-model")).select_by_value("")
    loaded.find_element("id", "f-min").send_keys("50")
    assert all(s >= 50 for s in visible_scores(loaded)) and 0 < len(visible_scores(loaded)) < CARDS
    loaded.find_element("id", "f-min").clear()
    loaded.execute_script("var m = document.getElementById('f-min'); m.dispatchEvent(new Event('input'))")
    Select(loaded.find_element("id", "f-sort")).select_by_value("score-asc")
    scores = visible_scores(loaded)
    assert len(scores) == CARDS and scores == sorted(scores)
    Select(loaded.find_element("id", "f-sort")).select_by_value("score-desc")
    assert visible_scores(loaded) == sorted(scores, reverse=True)
    Select(loaded.find_element("id", "f-prompt")).select_by_value(HOSTILE_TEXT)
    assert loaded.find_element("id", "f-count").text == f"1 of {CARDS} shown"
    # The leaderboard sorts by a clicked column.
    header = loaded.find_element("css selector", "table.board th:nth-child(2)")
    header.click()
    names = loaded.execute_script("return Array.prototype.map.call(document.querySelectorAll('table.board tbody tr'), r => r.cells[1].textContent)")
    assert names == sorted(names)


def test_side_by_side_and_screenshot(loaded, tmp_path):
    from selenium.webdriver.support.ui import Select

    Select(loaded.find_element("id", "side-a")).select_by_value("ladder")
    Select(loaded.find_element("id", "side-b")).select_by_value("hostile")
    headings = loaded.execute_script("return Array.prototype.map.call(document.querySelectorAll('#side-rows h4'), h => h.textContent)")
    # The two hostile files have different prompts; the plain one shares the ladder's prompt.
    assert len(headings) == 2 and headings[0].startswith("ladder: mean ") and headings[1].startswith("hostile: mean ")
    assert loaded.execute_script("return typeof window.pwned") == "undefined"
    shot = loaded.get_screenshot_as_png()
    (tmp_path / "report.png").write_bytes(shot)
    with Image.open(io.BytesIO(shot)) as image:
        assert image.format == "PNG" and image.size[0] >= 1000
