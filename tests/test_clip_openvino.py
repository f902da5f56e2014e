"""The clip measure's openvino engine: which engine runs, the once-per-checkpoint conversion, what
it reproduces of open_clip, and what the scoring process no longer loads.

Models are the tiny random-weight one of :mod:`tiny_clip`. No test depends on timing.
"""

from __future__ import annotations

import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
if "huggingface_hub.constants" in sys.modules:  # imported earlier in this session: the env var was read then
    sys.modules["huggingface_hub.constants"].HF_HUB_OFFLINE = True

import json  # noqa: E402
import subprocess  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from scorer import DEFAULT_PROMPT, Scorer  # noqa: E402
from scorer.config import default_cache_dir  # noqa: E402
from scorer.measure import clip as clip_module  # noqa: E402
from scorer.measure.clip import ClipParams, resolve_engine  # noqa: E402

pytest.importorskip("openvino")
clip_openvino = pytest.importorskip("scorer.measure.clip_openvino")

try:
    from tiny_clip import TinyClip, build_tiny_clip
except ImportError:  # tests/ imported as a package
    from tests.tiny_clip import TinyClip, build_tiny_clip

REPO = Path(__file__).resolve().parents[1]
LADDER = sorted((REPO / "fixtures" / "ladder").glob("*.svg"))
PELICAN = REPO / "fixtures" / "ladder" / "05_crude_pelican_on_bicycle.svg"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> TinyClip:
    pytest.importorskip("open_clip")
    return build_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


def cosines(tiny: TinyClip, **section: object) -> list[float]:
    with Scorer({"clip": tiny.clip_section(**section)}, jobs=1) as scorer:
        results = [scorer.score_file(path, DEFAULT_PROMPT) for path in LADDER]
    assert all(r.ok for r in results), [r.summary for r in results]
    assert all(r.provenance.measures["clip"]["engine"] == section.get("engine", "openvino") for r in results)
    return [r.components["clip"].details["cosine"] for r in results if "cosine" in r.components["clip"].details]


# -- which engine ------------------------------------------------------------------------------


def test_auto_engine_is_openvino_on_the_cpu_and_torch_where_it_cannot_be(tmp_path):
    assert resolve_engine("auto", "cpu", "ViT-B-32", None) == "openvino"
    assert resolve_engine("auto", "auto", "ViT-B-32", None, gpu=False) == "openvino"
    assert resolve_engine("auto", "auto", "ViT-B-32", None, gpu=True) == "torch"
    assert resolve_engine("auto", "cuda", "ViT-B-32", None) == "torch"
    assert resolve_engine("torch", "cpu", "ViT-B-32", None) == "torch"
    assert resolve_engine("openvino", "auto", "ViT-B-32", None, gpu=True) == "openvino"  # as asked
    # A text tower with a Hugging Face tokenizer: only torch's engine tokenizes it.
    config = tmp_path / "hf-text.json"
    config.write_text(json.dumps({"embed_dim": 32, "vision_cfg": {}, "text_cfg": {"hf_tokenizer_name": "some/tokenizer"}}))
    assert resolve_engine("auto", "cpu", "hf-text", str(config)) == "torch"
    assert resolve_engine("auto", "cpu", "xlm-roberta-base-ViT-B-32", None) == "torch"  # open_clip's own config says so


def test_the_engine_is_resolved_when_bound_and_is_part_of_the_config(tiny):
    auto = Scorer({"clip": tiny.clip_section()})
    openvino = Scorer({"clip": tiny.clip_section(engine="openvino")})
    torch = Scorer({"clip": tiny.clip_section(engine="torch")})
    assert auto.plan.measures["clip"].params.engine == "openvino"
    assert auto.config_sha256 == openvino.config_sha256 != torch.config_sha256


# -- what it computes --------------------------------------------------------------------------


def test_fp32_cosines_match_the_torch_engine(tiny):
    ours, theirs = cosines(tiny, engine="openvino"), cosines(tiny, engine="torch")
    assert len(ours) == len(LADDER)
    assert np.allclose(ours, theirs, rtol=0, atol=2e-6), np.abs(np.subtract(ours, theirs)).max()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_same_precision_gives_bit_identical_cosines_across_scorers(tiny, precision):
    first, second = cosines(tiny, engine="openvino", precision=precision), cosines(tiny, engine="openvino", precision=precision)
    assert first == second


def test_bf16_runs_in_bf16(tiny):
    fp32, bf16 = cosines(tiny, engine="openvino", precision="fp32"), cosines(tiny, engine="openvino", precision="bf16")
    assert fp32 != bf16  # the model really ran in another precision
    assert np.allclose(fp32, bf16, atol=0.02)


def test_preprocessing_is_open_clips_bit_for_bit(tiny):
    import open_clip

    open_clip.add_model_config(tiny.config_file)
    model, _, preprocess = open_clip.create_model_and_transforms(tiny.name, pretrained=None)
    ours = clip_openvino.Preprocess(**clip_openvino._preprocess_spec(model, "tiny"))
    rng = np.random.default_rng(0)
    for side in (224, 400, 150):
        square = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        theirs = preprocess(clip_openvino._pil(square)).numpy()
        assert np.array_equal(ours(square), theirs), side
        # The comparison has teeth: another filter than the model's is caught.
        other = clip_openvino.Preprocess(ours.side, ours.mean, ours.std, "bilinear")
        assert side == ours.side or not np.array_equal(other(square), theirs)


def test_a_tokenizer_it_cannot_reproduce_is_refused_with_the_way_out():
    with pytest.raises(ValueError, match="use clip.engine: torch"):
        clip_openvino._tokenizer_spec(object(), "some model")


# -- the bundle: converted once, in another process --------------------------------------------


def test_a_model_is_converted_once_and_then_loaded_from_its_bundle(tiny, monkeypatch):
    cosines(tiny, engine="openvino")  # converted here if no test before did
    conversions = []
    monkeypatch.setattr(clip_module, "_convert_in_subprocess", lambda *a: conversions.append(a))
    cosines(tiny, engine="openvino", precision="bf16")
    assert conversions == []
    bundles = [p for p in (default_cache_dir() / "clip-openvino").iterdir() if clip_openvino.is_bundle(p)]
    assert bundles and all(not p.name.startswith(".") for p in bundles)  # no staging folder left behind


def test_released_pages_of_a_read_only_file_mapping_leave_memory_and_read_back_the_same(tmp_path):
    """How a compiled tower's weights file stops counting twice: its pages dropped, not its mapping."""
    import mmap

    path = tmp_path / "weights.bin"
    data = np.random.default_rng(0).integers(0, 256, 4 << 20, dtype=np.uint8).tobytes()
    path.write_bytes(data)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:  # as OpenVINO maps it: r--s
        assert bytes(mapped) == data  # every page touched
        assert _resident_kb_of(tmp_path)["weights.bin"] >= 4000
        clip_module._release_file_pages(path)
        assert _resident_kb_of(tmp_path)["weights.bin"] == 0
        assert bytes(mapped) == data  # read again from the file


def _resident_kb_of(folder: Path) -> dict[str, int]:
    """Resident kB of this process's mappings of the files in ``folder``, by file name."""
    found: dict[str, int] = {}
    current = None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6 and "-" in fields[0] and ":" not in fields[0]:
            current = Path(fields[5]).name if Path(fields[5]).parent == folder.resolve() else None
        elif len(fields) == 5 and "-" in fields[0]:  # an anonymous mapping
            current = None
        elif current and fields[0] == "Rss:":
            found[current] = found.get(current, 0) + int(fields[1])
    return found


def test_the_scoring_process_never_imports_torch(tiny, tmp_path):
    cosines(tiny, engine="openvino")  # the bundle exists (converted in a subprocess if not)
    section = tiny.clip_section(engine="openvino")
    code = (
        "import json, sys\n"
        "from scorer import Scorer\n"
        f"with Scorer({{'clip': json.loads(sys.argv[1])}}, jobs=1) as s:\n"
        f"    r = s.score_file({str(PELICAN)!r})\n"
        "assert r.ok and 'cosine' in r.components['clip'].details, r.summary\n"
        "print('torch' in sys.modules, 'open_clip' in sys.modules)\n"
    )
    env = {**os.environ, "SVGSCORE_CACHE_DIR": str(default_cache_dir())}
    run = subprocess.run([sys.executable, "-c", code, json.dumps(section)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "False"]


def test_the_conversion_reports_nothing_home(tiny, tmp_path):
    """OpenVINO's converter would write a telemetry client id under ~/intel and send usage counts."""
    home, target = tmp_path / "home", tmp_path / "bundle"
    home.mkdir()
    target.mkdir()
    code = (
        "import sys\n"
        "events = []\n"
        "sys.addaudithook(lambda e, a: events.append(e) if e.startswith('socket.') else None)\n"
        "from scorer.measure.clip import _build_openvino_bundle\n"
        "_build_openvino_bundle(sys.argv[1], sys.argv[2])\n"
        "print(events)\n"
    )
    params = ClipParams(**tiny.clip_section(engine="openvino")).model_dump_json()
    env = {**os.environ, "HOME": str(home)}
    run = subprocess.run([sys.executable, "-c", code, params, str(target)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert clip_openvino.is_bundle(target)
    assert run.stdout.split("\n")[-2] == "[]"  # no socket opened
    assert list(home.rglob("*")) == []  # nothing written under $HOME


def test_a_model_that_cannot_be_converted_is_unavailable_once_per_process(monkeypatch, tmp_path):
    """Offline, a pretrained tag that is not in the hub's cache: the conversion says why; a second
    Scorer gets the same answer without converting again."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # an empty hub cache, for the conversion's process
    monkeypatch.setattr(clip_module, "_unconvertible", {})
    calls = []
    real = clip_module._convert_in_subprocess
    monkeypatch.setattr(clip_module, "_convert_in_subprocess", lambda *a: calls.append(a) or real(*a))
    config = {"clip": {"model": "ViT-B-32", "pretrained": "laion2b_s34b_b79k", "weights": None, "engine": "openvino"}}
    reasons = []
    for _ in range(2):
        with Scorer(config, jobs=1) as scorer:
            info = scorer.provenance.measures["clip"]
        assert info["available"] is False
        reasons.append(info["reason"])
    assert len(calls) == 1
    assert "laion2b_s34b_b79k: HF_HUB_OFFLINE is on and not in the hub's local cache" in reasons[0]
    assert reasons[0] == reasons[1]
