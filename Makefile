# Two commands on a fresh machine:  make demo  (set up + score fixtures/)  and  make test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The demo and tests are offline by design and say so up front (without it, a machine with no
# network spends one 2 s probe before CLIP is declared unavailable). Real weights: SVGSCORE_CLIP_WEIGHTS.
OFFLINE := HF_HUB_OFFLINE=1

.PHONY: install browser demo test golden robustness bench bench-ray validate clean

install: $(STAMP)

# torch is pinned: an unpinned torch pulls a multi-GB CUDA build (see README). The pins are repeated
# with the extras so that nothing they pull (TRL: transformers, accelerate) can move torch.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[clip,ocr,dev,resvg,serve,rl,inspect,ray]' torch==2.14.1 torchvision==0.29.1
	touch $(STAMP)

# The HTML report is tested in a real headless Chromium (Debian packages chromium and
# chromium-driver). Installed here when missing and apt-get is allowed; otherwise those
# tests skip and say why.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver) || \
		echo "chromium not installed: the browser tests will skip"

demo: $(STAMP)
	$(OFFLINE) $(BIN)/svgscore score fixtures/ladder fixtures/attacks fixtures/other_prompt fixtures/decoy fixtures/broken --manifest fixtures/prompts.csv

test: $(STAMP) browser
	$(OFFLINE) $(BIN)/python -m pytest

# After an intended change of scores (weights, a check, an accepted renderer upgrade): rescore the
# fixtures with the structural config, print what moved, rewrite tests/golden/structural_scores.json
# (which tests/test_golden.py checks, within a stated tolerance). Commit it with the change.
golden: $(STAMP)
	$(OFFLINE) $(BIN)/python -m tests.golden_scores

# Sweep the resvg test suite (and fixtures/hostile/) through the Scorer; check the robustness
# targets and report renderer fidelity against resvg's reference PNGs. ROBUSTNESS_JSON=path
# also writes the figures as JSON.
robustness: $(STAMP)
	$(OFFLINE) $(BIN)/python scripts/robustness.py

# Coverage-guided fuzzing (atheris, the `fuzz` extra) of load → render → measure for FUZZ_SECONDS
# (default 180), seeded from fixtures/ and the resvg suite; findings are replayed through the
# isolated Scorer. Prints executions, coverage, findings, contained, unfixed and fixed; exit 1 if
# a finding is unfixed. Corpus, findings and logs in build/fuzz/.
FUZZ_SECONDS ?= 180
.PHONY: fuzz soak
fuzz: $(STAMP)
	$(BIN)/python -c "import atheris" 2>/dev/null || $(BIN)/pip install --quiet -e '.[fuzz]'
	$(OFFLINE) $(BIN)/python scripts/fuzz.py --seconds $(FUZZ_SECONDS)

# SOAK_FILES (default 20,000) generated files, every 250th hostile, in one `svgscore score` run:
# RSS of the parent and the workers, open fds, child processes, zombies (~40 min on 2 cores).
SOAK_FILES ?= 20000
soak: $(STAMP)
	$(OFFLINE) $(BIN)/python scripts/soak.py --files $(SOAK_FILES)

# Throughput against a hand-written CLIP loop and against CLIP's own forward pass, cache
# cold/warm, structural-only, time to first result, peak RSS and RSS while streaming (~10 min
# on 2 cores). BENCH_FILES (default 300), BENCH_STREAM (default 10000), BENCH_JSON=path.
bench: $(STAMP)
	$(OFFLINE) $(BIN)/python scripts/bench.py

# The Ray executor against the local worker pool on 300 corpus files, on this machine (a cluster of
# its CPUs started by the script): throughput cold and warm, per-stage times, identical records,
# fixtures/hostile/ through Ray, and a 2-million-file cluster estimate (~5 min on 2 cores).
# BENCH_FILES (default 300), BENCH_JSON=path.
bench-ray: $(STAMP)
	$(OFFLINE) $(BIN)/python scripts/bench_ray.py

# Judge validity on ../shared/corpus/. First the human pairwise votes (JannesKlaas arena, dev half):
# per shipped config, agreement of its calibration procedure cross-validated by prompt (weights
# refitted without each held-out prompt, each fit shrunk towards configs/calibration/CONFIG_prior.yaml,
# weights chosen without the votes: so the figure is held out) with a bootstrap interval, beside that
# prior unfitted and the config as shipped (in-sample: its weights were chosen on these votes),
# the trivial judges (more XML elements wins, larger file wins) on the same votes, the same figures
# with prompts as the unit (prompt-bootstrap intervals of the agreement and of its lead over each
# trivial judge, prompts won / tied / lost against it: votes on one prompt are not independent) and the nine LLM
# judges of llm_judges.csv on their 184 votes; then per-component agreement on those votes. Then
# proxy labels (self-scores, iteration order, model size; written to build/validate/). ~3 min.
# Offline, CLIP is not counted: the default config's figures are its structural checks renormalised.
VALIDATE_DIR := build/validate
ARENA := ../shared/corpus/JannesKlaas__pelican-arena-dev
validate: $(STAMP)
	@for config in structural default; do \
		echo "== human votes $(ARENA)/votes.csv, config $$config: calibration from a vote-blind prior cross-validated by prompt (held out), the shipped config (in-sample), baselines, LLM judges"; \
		$(OFFLINE) $(BIN)/svgscore calibrate $(ARENA)/votes.csv --config $$config --prior configs/calibration/$${config}_prior.yaml \
			--judges $(ARENA)/llm_judges.csv || exit 1; \
	done
	$(OFFLINE) $(BIN)/svgscore validate $(ARENA)/votes.csv --config structural --config default
	$(BIN)/python scripts/corpus_votes.py $(VALIDATE_DIR)
	$(OFFLINE) $(BIN)/svgscore validate $(addprefix $(VALIDATE_DIR)/,jlebensold_self_scores.csv youngbrioche_iterations.csv \
		youngbrioche_iteration_ranking.csv model_siblings.csv) --ranking $(VALIDATE_DIR)/qwen_size_series.txt \
		--config structural --config default

# The model judge (configs/vlm.example.yaml) against the test suite's fake vision endpoint
# (tests/fake_vlm.py: an OpenAI-compatible server on :8000 that scores painted area): score three
# folders, a pairwise tournament between them with its votes CSV, then both again, every answer
# from the judge's cache (0 calls). Port 8000 must be free. Output in build/judge-demo/.
JUDGE_DIR := build/judge-demo
JUDGE_FOLDERS := fixtures/ladder fixtures/attacks fixtures/decoy
.PHONY: judge-demo
judge-demo: $(STAMP)
	rm -rf $(JUDGE_DIR) && mkdir -p $(JUDGE_DIR)
	$(BIN)/python -m tests.fake_vlm --port 8000 > $(JUDGE_DIR)/fake.log 2>&1 & echo $$! > $(JUDGE_DIR)/fake.pid; \
	trap 'kill $$(cat $(JUDGE_DIR)/fake.pid)' EXIT; \
	for i in $$(seq 50); do $(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 8000), 1)" 2>/dev/null && break; sleep 0.2; done; \
	export SVGSCORE_CACHE_DIR=$(JUDGE_DIR)/cache $(OFFLINE) && \
	$(BIN)/svgscore score $(JUDGE_FOLDERS) --config configs/vlm.example.yaml --dry-run && \
	$(BIN)/svgscore score $(JUDGE_FOLDERS) --config configs/vlm.example.yaml -o $(JUDGE_DIR)/results.jsonl && \
	$(BIN)/svgscore compare $(JUDGE_DIR)/results.jsonl --by dir --judge configs/vlm.example.yaml --pairwise --votes-out $(JUDGE_DIR)/votes.csv && \
	echo "--- again, result cache off: the judge's answer cache alone" && \
	$(BIN)/svgscore score $(JUDGE_FOLDERS) --config configs/vlm.example.yaml --no-cache -o $(JUDGE_DIR)/again.jsonl && \
	$(BIN)/svgscore compare $(JUDGE_DIR)/results.jsonl --by dir --judge configs/vlm.example.yaml --pairwise | tail -n 1

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
