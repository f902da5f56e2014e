"""The result cache: unchanged work is skipped, any change is re-scored."""

import shutil

from scorer import ScoreItem, Scorer, api
from scorer import cache as cache_module
from scorer.render import renderer_provenance

from .conftest import LADDER, STRUCTURAL

PROMPT = "a pelican riding a bicycle"


def run(folder, cache_dir, config=STRUCTURAL, prompt=PROMPT):
    with Scorer(config, jobs=2, cache=cache_dir) as scorer:
        results = list(scorer.score_items(ScoreItem(str(p), prompt) for p in sorted(folder.iterdir())))
        tasks = len(scorer.pool.stats.seconds) + scorer.pool.stats.timeouts + scorer.pool.stats.deaths
    return results, tasks


def test_unchanged_files_are_not_rescored_and_records_are_identical(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    for path in LADDER:
        shutil.copy(path, folder)
    cold, cold_tasks = run(folder, tmp_path / "cache")
    warm, warm_tasks = run(folder, tmp_path / "cache")
    assert cold_tasks == len(LADDER) and warm_tasks == 0
    assert [r.to_dict() for r in warm] == [r.to_dict() for r in cold]


def test_a_changed_file_prompt_or_config_is_rescored(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    for path in LADDER:
        shutil.copy(path, folder)
    cache = tmp_path / "cache"
    run(folder, cache)
    victim = folder / LADDER[3].name
    victim.write_text(victim.read_text().replace("</svg>", '<circle cx="5" cy="5" r="3"/></svg>'))
    results, tasks = run(folder, cache)
    assert tasks == 1
    assert [r.path for r in results] == [str(p) for p in sorted(folder.iterdir())]  # order kept around the miss
    assert run(folder, cache, prompt="a turtle wearing roller skates")[1] == len(LADDER)
    tweaked = {**STRUCTURAL, "render": {"size": 192}}
    assert run(folder, cache, config=tweaked)[1] == len(LADDER)


def test_changed_svgscore_code_is_rescored(tmp_path, monkeypatch):
    # An editable install changes a check without changing the version: the cache must notice.
    folder = tmp_path / "files"
    folder.mkdir()
    shutil.copy(LADDER[0], folder)
    run(folder, tmp_path / "cache")
    assert run(folder, tmp_path / "cache")[1] == 0
    monkeypatch.setattr(api, "source_sha256", lambda: "another revision of the checks")
    assert run(folder, tmp_path / "cache")[1] == 1


def test_a_renderer_upgrade_is_rescored(tmp_path, monkeypatch):
    # Another cairo can shade pixels differently: a cached score made with the old one is stale.
    folder = tmp_path / "files"
    folder.mkdir()
    shutil.copy(LADDER[2], folder)
    run(folder, tmp_path / "cache")
    assert run(folder, tmp_path / "cache")[1] == 0
    upgraded = {**renderer_provenance("cairosvg"), "native": "cairo 99.0.0"}
    monkeypatch.setattr(api, "renderer_provenance", lambda backend: upgraded)
    (result,), tasks = run(folder, tmp_path / "cache")
    assert tasks == 1 and result.provenance.renderer["native"] == "cairo 99.0.0"
    assert run(folder, tmp_path / "cache")[1] == 0  # and cached under the new renderer


def test_an_unreadable_cached_record_is_a_miss(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    shutil.copy(LADDER[2], folder)
    (cold,), _ = run(folder, tmp_path / "cache")
    store = cache_module.ResultCache(tmp_path / "cache")
    store._db.execute("UPDATE results SET record = ?", ('{"score": 100}',))  # e.g. written by a future version
    store.close()
    (again,), tasks = run(folder, tmp_path / "cache")
    assert tasks == 1 and again == cold


def test_the_same_bytes_elsewhere_hit_the_cache_with_their_own_path(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    shutil.copy(LADDER[4], a)
    shutil.copytree(a, b)
    run(a, tmp_path / "cache")
    (result,), tasks = run(b, tmp_path / "cache")
    assert tasks == 0 and result.path == str(b / LADDER[4].name)


def test_timeouts_are_not_cached(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    shutil.copy(LADDER[5], folder)
    config = {**STRUCTURAL, "render": {"timeout_s": 0.001}}
    first, _ = run(folder, tmp_path / "cache", config=config)
    second, tasks = run(folder, tmp_path / "cache", config=config)
    assert first[0].error.code == second[0].error.code == "render_timeout"
    assert tasks == 1
