"""The RL reward functions: TRL's reward_funcs contract, one real GRPO training step, and verl's
compute_score. Offline: the policy is a tiny GPT-2 built here, with its own tokenizer.
"""

from __future__ import annotations

import itertools

import pytest
import yaml

from scorer import Scorer
from scorer.integrations import rl
from scorer.integrations.rl import UNUSABLE_REWARD, SvgReward, compute_score

from .conftest import FIXTURES, STRUCTURAL

PELICAN = FIXTURES / "ladder" / "05_crude_pelican_on_bicycle.svg"
SUBJECT = "a pelican riding a bicycle"
EXPECTED_STATUS = {"pelican": "ok", "nothing": "no_svg", "half": "truncated_output"}


@pytest.fixture(scope="module")
def library() -> Scorer:
    with Scorer(STRUCTURAL, jobs=1) as scorer:
        yield scorer


@pytest.fixture(scope="module")
def reward():
    with SvgReward(STRUCTURAL, jobs=1) as function:
        yield function


def test_trl_contract_plain_and_conversational(reward, library):
    pelican = PELICAN.read_text(encoding="utf-8")
    expected = library.score_svg(pelican, prompt=SUBJECT).score / 100
    replies = [f"Sure!\n```svg\n{pelican}\n```", "I cannot draw.", pelican[:300], "<svg xmlns='http://www.w3.org/2000/svg'><rect"]
    metrics: dict[str, list[float]] = {}
    columns: dict[str, list] = {}
    # What GRPOTrainer passes besides prompts and completions: the completion ids, every other
    # dataset column, its state and two logging hooks.
    hooks = {
        "completion_ids": [[1, 2]] * 4,
        "trainer_state": object(),
        "log_extra": lambda column, values: columns.setdefault(column, []).extend(values),
        "log_metric": lambda name, value: metrics.setdefault(name, []).append(value),
    }
    plain = reward(["Draw a pelican riding a bicycle."] * 4, replies, subject=[SUBJECT] * 4, **hooks)
    conversation = reward(
        [[{"role": "system", "content": "Answer in SVG."}, {"role": "user", "content": "Draw a pelican riding a bicycle."}]] * 4,
        [[{"role": "assistant", "content": reply}] for reply in replies],
        subject=[SUBJECT] * 4,
        **hooks,
    )
    assert plain == conversation == [pytest.approx(expected), UNUSABLE_REWARD, UNUSABLE_REWARD, UNUSABLE_REWARD]
    assert all(isinstance(value, float) for value in plain)
    codes = [r["error"]["code"] if r["error"] else r["status"] for r in reward.last_records]
    assert codes == ["ok", "no_svg", "truncated_output", "truncated_output"]
    assert columns["svgscore_status"] == codes * 2
    assert metrics["svgscore/unusable_fraction"] == [0.75, 0.75]
    # Without the subject column the prompt itself is what the drawing is judged against.
    [own] = reward(["Draw a turtle wearing roller skates."], [pelican])
    assert reward.last_records[0]["prompt"] == "Draw a turtle wearing roller skates."
    assert own == pytest.approx(library.score_svg(pelican, prompt="Draw a turtle wearing roller skates.").score / 100)


def test_unusable_value_is_configurable(library):
    with SvgReward(STRUCTURAL, jobs=1, unusable=-1.0) as punishing:
        assert punishing(["x", "x"], ["no drawing", PELICAN.read_text(encoding="utf-8")], subject=[SUBJECT] * 2) == [
            -1.0,
            pytest.approx(library.score_file(PELICAN).score / 100),
        ]


def test_verl_compute_score_one_sample_at_a_time(tmp_path, monkeypatch, library):
    config = tmp_path / "structural.yaml"
    config.write_text(yaml.safe_dump(STRUCTURAL), encoding="utf-8")
    monkeypatch.setenv(rl.CONFIG_ENV, str(config))
    monkeypatch.setattr(rl, "_shared", None)
    try:
        reply = f"```svg\n{PELICAN.read_text(encoding='utf-8')}\n```"
        # verl's NaiveRewardManager: keyword arguments, the subject as ground_truth.
        value = compute_score(data_source="svg", solution_str=reply, ground_truth=SUBJECT, extra_info={"index": 0})
        assert value == pytest.approx(library.score_file(PELICAN, SUBJECT).score / 100)
        assert compute_score("svg", "no drawing today", SUBJECT) == UNUSABLE_REWARD
        turtle = compute_score("svg", reply, None, {"prompt": "a turtle wearing roller skates"})
        assert turtle == pytest.approx(library.score_file(PELICAN, "a turtle wearing roller skates").score / 100)
        assert rl._shared is not None and rl._shared._scorer.config_sha256 == library.config_sha256  # one scorer, reused
    finally:
        if rl._shared is not None:
            rl._shared.close()


# -- a real GRPO step -------------------------------------------------------------------------------


def _chains() -> dict[str, list[str]]:
    """Each prompt token starts a fixed chain of tokens the tiny policy always produces."""
    svg = PELICAN.read_text(encoding="utf-8")
    size = -(-len(svg) // 8)
    return {
        "<draw-pelican>": [svg[i : i + size] for i in range(0, len(svg), size)],
        "<draw-nothing>": ["Sorry, ", "I cannot ", "draw that."],
        "<draw-half>": ['<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">', '<rect width="4"'],
    }


def _tiny_policy():
    """A one-layer GPT-2 whose next token depends only on the current one (a lookup table made
    of weights: one-hot embeddings, blocks that add nothing, an output row per successor), and a
    word-level tokenizer whose tokens are the chain pieces. Nothing is downloaded."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    chains = _chains()
    tokens = ["<pad>", "<eos>", "<unk>", *chains, *(piece for chain in chains.values() for piece in chain)]
    assert len(set(tokens)) == len(tokens)  # a piece appearing twice would have two successors
    vocab = {token: i for i, token in enumerate(tokens)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.Fuse()  # pieces are joined as they are, spaces and newlines included
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>", clean_up_tokenization_spaces=False
    )
    tokenizer.chat_template = "{% for message in messages %}{{ message['content'] }}{% endfor %}"
    size = len(vocab) + 8
    config = GPT2Config(
        vocab_size=len(vocab), n_positions=64, n_embd=size, n_layer=1, n_head=1, tie_word_embeddings=False,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=vocab["<eos>"], eos_token_id=vocab["<eos>"], pad_token_id=vocab["<pad>"],
    )  # fmt: skip
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        model.transformer.wte.weight.copy_(torch.eye(len(vocab), size))
        model.transformer.wpe.weight.zero_()
        for block in model.transformer.h:
            for projection in (block.attn.c_proj, block.mlp.c_proj):
                projection.weight.zero_()
                projection.bias.zero_()
        normed = model.transformer.ln_f(model.transformer.wte.weight)
        model.lm_head.weight.zero_()
        for start, chain in chains.items():
            sequence = [start, *chain, "<eos>"]
            for token, successor in itertools.pairwise(sequence):
                # logit(successor) = |normed|² ≈ width, every other logit ≈ 0: sampling is certain.
                model.lm_head.weight[vocab[successor]] += normed[vocab[token]]
    return model, tokenizer


@pytest.mark.filterwarnings("ignore::FutureWarning")  # transformers' deprecations, met inside TRL
@pytest.mark.parametrize("conversational", [False, True], ids=["plain", "conversational"])
def test_a_real_grpo_step_with_a_tiny_policy(conversational, reward, library, tmp_path):
    pytest.importorskip("trl")
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    model, tokenizer = _tiny_policy()
    starts = list(_chains())
    prompts = [[{"role": "user", "content": s}] for s in starts] if conversational else starts
    dataset = Dataset.from_dict({"prompt": prompts, "subject": [SUBJECT] * len(starts)})
    args = GRPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=2 * len(starts), num_generations=2,
        max_completion_length=16, max_steps=1, logging_steps=1, learning_rate=1e-6, seed=0,
        use_cpu=True, bf16=False, report_to="none", save_strategy="no", disable_tqdm=True,
    )  # fmt: skip
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=dataset, processing_class=tokenizer)
    trainer.train()

    records = reward.last_records
    assert len(records) == 2 * len(starts)
    # Each prompt's two generations, in whatever order the trainer's sampler put the prompts.
    codes = [r["error"]["code"] if r["error"] else r["status"] for r in records]
    assert sorted(codes) == sorted(list(EXPECTED_STATUS.values()) * 2)
    pelican = library.score_file(PELICAN, SUBJECT).score / 100
    assert [r["score"] for r in records if r["status"] == "ok"] == [pytest.approx(pelican * 100)] * 2
    [logged, *_] = trainer.state.log_history
    assert logged["rewards/svgscore/mean"] == pytest.approx(2 * pelican / len(records))
    assert logged["svgscore/unusable_fraction"] == pytest.approx(4 / 6)

