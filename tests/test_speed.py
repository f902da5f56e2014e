"""Issue 13: CLIP precision (fp32 / bf16 / auto), the offline probe, and what the workers import.

No test here depends on timing: precision is checked through the record and the config hash,
determinism by comparing bits, the probe by what it did (how many connects, what it says).
"""

from __future__ import annotations

import os
import socket
import sys
import threading

os.environ["HF_HUB_OFFLINE"] = "1"
if "huggingface_hub.constants" in sys.modules:  # imported earlier in this session: the env var was read then
    sys.modules["huggingface_hub.constants"].HF_HUB_OFFLINE = True

import json  # noqa: E402
import logging  # noqa: E402
import subprocess  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import yaml  # noqa: E402

from scorer import ScoreItem, Scorer  # noqa: E402
from scorer.measure import clip as clip_module  # noqa: E402
from scorer.measure.clip import ClipParams, resolve_precision  # noqa: E402

try:
    from tiny_clip import TinyClip, build_tiny_clip
except ImportError:  # tests/ imported as a package
    from tests.tiny_clip import TinyClip, build_tiny_clip

REPO = Path(__file__).resolve().parents[1]
LADDER = sorted((REPO / "fixtures" / "ladder").glob("*.svg"))
PELICAN = REPO / "fixtures" / "ladder" / "05_crude_pelican_on_bicycle.svg"
SVGSCORE = Path(sys.executable).with_name("svgscore")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> TinyClip:
    pytest.importorskip("open_clip")
    return build_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


def score_ladder(tiny: TinyClip, precision: str, **kwargs) -> list:
    with Scorer({"clip": tiny.clip_section(precision=precision)}, jobs=1, **kwargs) as scorer:
        return [scorer.score_file(path) for path in LADDER]


def cosines(results: list) -> list[float]:
    return [r.components["clip"].details["cosine"] for r in results if r.ok]


# -- precision: what auto picks ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (frozenset({"sse4_2", "avx2", "avx512f"}), "fp32"),  # bf16 would be emulated: slower than fp32
        (frozenset({"avx512f", "avx512_bf16"}), "bf16"),
        (frozenset({"amx_tile", "amx_bf16", "amx_int8"}), "bf16"),
        (frozenset(), "fp32"),  # nothing known about the CPU
    ],
)
def test_auto_precision_follows_the_cpu_flags(flags, expected):
    assert resolve_precision("auto", "cpu", cpu_flags=flags) == expected
    assert resolve_precision("auto", "auto", cpu_flags=flags, gpu=False) == expected


def test_auto_precision_on_cuda_is_bf16_and_explicit_choices_stand():
    assert resolve_precision("auto", "cuda", cpu_flags=frozenset()) == "bf16"
    assert resolve_precision("auto", "auto", cpu_flags=frozenset(), gpu=True) == "bf16"
    assert resolve_precision("fp32", "cuda", cpu_flags=frozenset({"amx_bf16"})) == "fp32"
    assert resolve_precision("bf16", "cpu", cpu_flags=frozenset()) == "bf16"


def test_auto_is_resolved_when_bound_so_hash_and_record_name_the_precision(tiny):
    resolved = ClipParams().precision
    assert resolved in ("fp32", "bf16")  # never "auto": the config hash sees what runs
    auto = Scorer({"clip": tiny.clip_section(precision="auto")})
    same = Scorer({"clip": tiny.clip_section(precision=resolved)})
    other = Scorer({"clip": tiny.clip_section(precision="fp32" if resolved == "bf16" else "bf16")})
    assert auto.plan.measures["clip"].params.precision == resolved
    assert auto.config_sha256 == same.config_sha256 != other.config_sha256


# -- precision: scores, determinism, cache ----------------------------------------------------


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_same_precision_gives_bit_identical_scores_across_runs(tiny, precision):
    first, second = score_ladder(tiny, precision), score_ladder(tiny, precision)
    assert [r.to_dict() for r in first] == [r.to_dict() for r in second]
    assert all(r.provenance.measures["clip"]["precision"] == precision for r in first)


def test_bf16_moves_cosines_a_little_and_says_so(tiny):
    fp32, bf16 = cosines(score_ladder(tiny, "fp32")), cosines(score_ladder(tiny, "bf16"))
    assert len(fp32) == len(bf16) > 3
    assert fp32 != bf16  # the model really ran in another precision
    assert max(abs(a - b) for a, b in zip(fp32, bf16, strict=True)) < 0.05


def test_a_cache_filled_at_one_precision_is_not_used_at_the_other(tiny, tmp_path):
    fp32 = score_ladder(tiny, "fp32", cache=tmp_path)
    bf16 = score_ladder(tiny, "bf16", cache=tmp_path)
    again = score_ladder(tiny, "fp32", cache=tmp_path)
    assert [r.provenance.measures["clip"]["precision"] for r in bf16 if r.ok] == ["bf16"] * len(cosines(bf16))
    assert [r.to_dict() for r in again] == [r.to_dict() for r in fp32]


def test_cli_precision_flag_reaches_the_record(tiny, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"clip": {"model": tiny.name, "model_config_file": str(tiny.config_file)}}))
    records = {}
    for precision in ("fp32", "bf16"):
        run = subprocess.run(
            [str(SVGSCORE), "score", str(PELICAN), "--config", str(config), "--clip-weights", str(tiny.checkpoint),
             "--precision", precision, "--format", "json", "--jobs", "1"],
            cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        [records[precision]] = json.loads(run.stdout)
    assert {p: r["provenance"]["measures"]["clip"]["precision"] for p, r in records.items()} == {"fp32": "fp32", "bf16": "bf16"}
    assert records["fp32"]["config_sha256"] != records["bf16"]["config_sha256"]


# -- no stall offline ----------------------------------------------------------------------------


@pytest.fixture
def online_hub(monkeypatch):
    """The hub client believing it is online, pointed at ``ENDPOINT``; every TCP connect counted."""
    import huggingface_hub.constants as hub

    connects: list[tuple] = []
    real = socket.create_connection

    def counting(address, *args, **kwargs):
        connects.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(socket, "create_connection", counting)
    monkeypatch.setattr(clip_module, "_probed", {})
    return hub, connects


def closed_port() -> int:
    """A loopback port nothing listens on: a connect there is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_hub_makes_clip_unavailable_after_one_probe(online_hub, monkeypatch):
    hub, connects = online_hub
    port = closed_port()
    monkeypatch.setattr(hub, "ENDPOINT", f"http://127.0.0.1:{port}")
    # The torch engine probes in this process (the openvino engine's conversion, in its own: see test_clip_openvino).
    config = {"clip": {"model": "ViT-B-32", "pretrained": "laion2b_s34b_b79k", "weights": None, "precision": "fp32", "engine": "torch"}}
    reasons = []
    for _ in range(2):  # the second Scorer of the run does not ask again
        with Scorer(config, jobs=1) as scorer:
            info = scorer.provenance.measures["clip"]
        assert info["available"] is False
        reasons.append(info["reason"])
    assert connects == [("127.0.0.1", port)]
    assert f"no network (127.0.0.1:{port} unreachable (" in reasons[0]
    assert "refused" in reasons[0].lower()
    assert reasons[0] == reasons[1]
    assert hub.HF_HUB_OFFLINE is True  # remembered: the hub client will not retry either


def test_offline_without_the_weights_cached_says_why_once(monkeypatch, tmp_path, caplog):
    """HF_HUB_OFFLINE set by the user and nothing in the hub's cache: one clear reason, not open_clip's raw error too."""
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path))  # an empty hub cache
    monkeypatch.setattr(clip_module, "_probed", {})
    config = {"clip": {"model": "ViT-B-32", "pretrained": "laion2b_s34b_b79k", "weights": None, "precision": "fp32", "engine": "torch"}}
    with caplog.at_level("INFO"), Scorer(config, jobs=1) as scorer:
        info = scorer.provenance.measures["clip"]
    assert info["available"] is False
    assert "laion2b_s34b_b79k: HF_HUB_OFFLINE is on and not in the hub's local cache; pass a local checkpoint" in info["reason"]
    assert not [r for r in caplog.records if "Failed to download" in r.getMessage()]


def test_probe_that_gets_no_answer_gives_up_and_says_so(monkeypatch):
    released = threading.Event()

    def black_hole(address, *args, **kwargs):  # a host that never answers (nor resolves)
        released.wait(60)
        raise TimeoutError

    monkeypatch.setattr(socket, "create_connection", black_hole)
    monkeypatch.setattr(clip_module, "PROBE_TIMEOUT_S", 0.2)
    try:
        assert clip_module.probe("https://hub.invalid") == "hub.invalid:443 unreachable (no answer within 0.2 s)"
    finally:
        released.set()


def test_reachable_host_passes_the_probe(online_hub):
    _, connects = online_hub
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert clip_module.probe(f"http://127.0.0.1:{port}/") is None
    assert connects == [("127.0.0.1", port)]


# -- footprint: workers never import torch (nor httpx) -----------------------------------------

PROBE_PLUGIN = '''
import sys
from scorer.measure.registry import Measurement, NoParams, check


@check("imports_torch", "test probe: whether this worker has torch, open_clip or the judges' HTTP client loaded")
def imports_torch(drawing, _: NoParams) -> Measurement:
    loaded = sorted(m for m in ("torch", "open_clip", "torchvision", "httpx") if m in sys.modules)
    return Measurement(0.0 if loaded else 1.0, "loaded: " + ",".join(loaded), {"loaded": loaded})
'''


def test_workers_never_import_torch_while_clip_runs(tiny, tmp_path):
    plugin = tmp_path / "torch_probe.py"
    plugin.write_text(PROBE_PLUGIN)
    config = {"checks": {"clip": {"weight": 0.5, "params": tiny.clip_section()}, "imports_torch": {"weight": 0.5}}}
    with Scorer(config, jobs=1, plugins=[str(plugin)]) as scorer:
        results = [scorer.score_file(path) for path in LADDER[:3]]
    assert "torch" in sys.modules  # the parent did load the model...
    for result in results:
        assert result.components["clip"].value is not None  # ...and CLIP ran,
        assert result.components["imports_torch"].details["loaded"] == []  # but no worker imported torch (or httpx)


def mapped_kb(path: Path) -> int:
    """Resident kB of this process's mappings of ``path`` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5 and fields[0][0] in "0123456789abcdef" and ":" in fields[3]:
            inside = len(fields) >= 6 and fields[5] == os.path.realpath(path)
        elif inside and fields[0] == "Rss:":
            total += int(fields[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").is_file(), reason="needs Linux's /proc/self/smaps")
def test_bf16_conversion_gives_module_to_values_and_drops_the_checkpoints_pages(tmp_path):
    """Converting a memory-mapped checkpoint to bf16 must not hold the fp32 file in memory beside it."""
    torch = pytest.importorskip("torch")
    path = tmp_path / "linear.pt"
    torch.manual_seed(0)
    torch.save(torch.nn.Linear(1024, 1024).state_dict(), path)  # 4 MB of fp32 weights
    reference = torch.nn.Linear(1024, 1024)
    reference.load_state_dict(torch.load(path, weights_only=True))
    reference.to(torch.bfloat16)

    state = torch.load(path, mmap=True, weights_only=True)  # held: the mapping stays while we look at it
    plain = torch.nn.Linear(1024, 1024)
    plain.load_state_dict(state, assign=True)
    plain.to(torch.bfloat16)  # what the conversion replaced: every page of the weights read in and kept
    kept = mapped_kb(path)
    assert kept > 3000

    del plain, state
    state = torch.load(path, mmap=True, weights_only=True)
    model = torch.nn.Linear(1024, 1024)
    model.load_state_dict(state, assign=True)
    clip_module._convert_releasing(model, torch.bfloat16, str(path))
    assert mapped_kb(path) < 64  # at most the pages a tensor shares with its neighbours in the file
    for name, value in reference.state_dict().items():
        assert model.state_dict()[name].dtype == torch.bfloat16
        assert torch.equal(model.state_dict()[name], value), name


def test_building_for_a_checkpoint_draws_no_random_numbers_and_stays_in_its_block():
    """The random initial values a checkpoint replaces are not drawn; deterministic buffers are built."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    drawn = torch.nn.Linear(64, 64)
    before = torch.get_rng_state()
    with clip_module._without_random_init():
        skipped = torch.nn.Linear(64, 64)
        mask = torch.empty(4, 4).fill_(float("-inf")).triu_(1)  # open_clip's causal mask, built the same way
    assert torch.equal(torch.get_rng_state(), before)  # no draw consumed the generator
    assert skipped.weight.shape == drawn.weight.shape
    assert torch.equal(mask, torch.full((4, 4), float("-inf")).triu(1))
    after = torch.nn.Linear(64, 64)  # outside the block: initialised again
    assert not torch.equal(torch.get_rng_state(), before) and after.weight.abs().sum() > 0


def test_a_checkpoint_loaded_without_random_init_equals_open_clips_own_load(tiny):
    """Every parameter and buffer (the non-persistent attention mask too) as open_clip loads them."""
    open_clip = pytest.importorskip("open_clip")
    torch = pytest.importorskip("torch")
    loaded = clip_module.load_clip(ClipParams(**tiny.clip_section(precision="fp32", engine="torch"))).towers.model
    theirs, _, _ = open_clip.create_model_and_transforms(tiny.name, pretrained=str(tiny.checkpoint))
    buffers = dict(theirs.named_buffers())
    assert "attn_mask" in buffers  # non-persistent: not in the checkpoint, so built, not loaded
    assert dict(loaded.named_buffers()).keys() == buffers.keys()
    assert loaded.state_dict().keys() == theirs.state_dict().keys()
    for name, value in theirs.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name
    for name, value in loaded.named_buffers():
        assert torch.equal(value, buffers[name]), name


def test_models_load_beside_the_workers_and_not_for_a_cached_run(tiny, tmp_path, monkeypatch):
    """CLIP loads in the background from the first file sent to the workers; from the cache, never."""
    import scorer.api

    loads: list[str] = []
    real = scorer.api.load_batched

    def recording(bound):
        loads.append(threading.current_thread().name)
        return real(bound)

    monkeypatch.setattr(scorer.api, "load_batched", recording)
    runs = []
    for _ in range(2):
        with Scorer({"clip": tiny.clip_section()}, jobs=1, cache=tmp_path / "cache") as scorer:
            runs.append(list(scorer.score_items(ScoreItem(path=str(path), prompt="a pelican riding a bicycle") for path in LADDER)))
    assert loads == ["svgscore-load-clip"]  # once, off the main thread; the second run was all cache hits
    assert all(r.ok and r.components["clip"].value is not None for r in runs[0])
    assert [r.score for r in runs[0]] == [r.score for r in runs[1]]


_PEAK_OF_CONVERSION = """
import sys
from pathlib import Path
import torch
from scorer.measure import clip

def kb(field):
    return int(Path("/proc/self/status").read_text().split(field + ":")[1].split()[0])

model = torch.nn.Module()
model.weight = torch.nn.Parameter(torch.load(sys.argv[1], mmap=True, weights_only=True)["weight"], requires_grad=False)
before = kb("VmRSS")  # the mapping is not read yet
Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
clip._convert_releasing(model, torch.bfloat16, sys.argv[1])
print((kb("VmHWM") - before) // 1024)
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc/self/clear_refs to reset the peak")
def test_bf16_conversion_of_a_large_tensor_never_holds_it_whole_beside_its_copy(tmp_path):
    """64 MB of fp32 → 32 MB of bf16: converted in slices, the peak stays near the copy (96 MB if whole)."""
    torch = pytest.importorskip("torch")
    path = tmp_path / "large.pt"
    torch.save({"weight": torch.ones(16 << 20)}, path)
    run = subprocess.run([sys.executable, "-c", _PEAK_OF_CONVERSION, str(path)], capture_output=True, text=True, timeout=300, check=True)
    assert int(run.stdout.split()[-1]) < 56  # the 32 MB copy, one 8 MB slice and slack; whole: 96


def test_loading_a_checkpoint_does_not_say_the_model_was_initialised_randomly(tiny, caplog):
    """open_clip warns so when built without weights; ours come from the checkpoint right after."""
    pytest.importorskip("open_clip")
    with caplog.at_level("INFO"):
        clip_module.load_clip(ClipParams(**tiny.clip_section(engine="torch")))
    assert not [r for r in caplog.records if "initialized randomly" in r.getMessage()]
    with caplog.at_level("INFO"):  # the filter ended with the load: the same warning passes again
        logging.getLogger().warning("No pretrained weights loaded for model 'x'. Model initialized randomly.")
    assert [r for r in caplog.records if "initialized randomly" in r.getMessage()]
