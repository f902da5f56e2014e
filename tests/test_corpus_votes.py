"""scripts/corpus_votes.py: proxy labels from ../shared/corpus/ metadata."""

import collections
import csv
import importlib.util

import pytest

from scorer.validate.votes import read_ranking, read_votes

from .conftest import REPO

_spec = importlib.util.spec_from_file_location("corpus_votes", REPO / "scripts" / "corpus_votes.py")
corpus_votes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus_votes)

CORPUS = corpus_votes.DEFAULT_CORPUS
needs_corpus = pytest.mark.skipif(not (CORPUS / "README.md").is_file(), reason=f"shared corpus not present at {CORPUS}")


def _write_csv(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture
def tiny_corpus(tmp_path):
    """Two jlebensold agents and two youngbrioche runs, metadata only."""
    frames = tmp_path / corpus_votes.JLEBENSOLD / "extracted" / "frames.csv"
    _write_csv(frames, ["agent_key", "round", "self_score", "path"], [
        ["flash", 1, 40, "f1.svg"], ["flash", 2, 38.5, "f2.svg"], ["flash", 3, 40, "f3.svg"],
        ["sonnet", 1, 30, "s1.svg"], ["sonnet", 2, 36, "s2.svg"],
    ])  # fmt: skip
    iterations = tmp_path / corpus_votes.YOUNGBRIOCHE / "iterations.csv"
    _write_csv(iterations, ["run", "iteration", "is_last", "path"], [
        ["r1", 10, 1, "r1/pelican_v10.svg"], ["r1", 2, 0, "r1/pelican_v2.svg"], ["r1", 1, 0, "r1/pelican_v1.svg"],
        ["solo", "", 1, "solo/pelican-bike.svg"],
    ])  # fmt: skip
    return tmp_path


def test_self_scores_vote_within_an_agent_only(tiny_corpus):
    root = tiny_corpus / corpus_votes.JLEBENSOLD
    votes = {(a.name, b.name): w for a, b, w in corpus_votes.self_score_votes(tiny_corpus)}
    assert all(a.parent == root for a, _, _ in corpus_votes.self_score_votes(tiny_corpus))
    assert votes == {("f1.svg", "f2.svg"): "a", ("f1.svg", "f3.svg"): "tie", ("f2.svg", "f3.svg"): "b", ("s1.svg", "s2.svg"): "b"}


def test_later_iterations_win_in_numeric_not_lexical_order(tiny_corpus):
    votes = {(a.name, b.name, w) for a, b, w in corpus_votes.iteration_votes(tiny_corpus)}
    assert votes == {("pelican_v2.svg", "pelican_v1.svg", "a"), ("pelican_v10.svg", "pelican_v1.svg", "a"), ("pelican_v10.svg", "pelican_v2.svg", "a")}
    ranks = {(p.name, rank, run) for p, rank, run in corpus_votes.iteration_ranking(tiny_corpus)}
    assert ranks == {("pelican_v10.svg", 1, "r1"), ("pelican_v2.svg", 2, "r1"), ("pelican_v1.svg", 3, "r1"), ("pelican-bike.svg", 1, "solo")}


def test_written_files_read_back_as_labels(tiny_corpus, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    n = corpus_votes.write_votes(out / "votes.csv", corpus_votes.iteration_votes(tiny_corpus))
    votes = read_votes(out / "votes.csv")
    assert len(votes) == n == 3
    assert votes[0].a.resolve() == (tiny_corpus / corpus_votes.YOUNGBRIOCHE / "r1" / "pelican_v2.svg").resolve()
    corpus_votes.write_ranking(out / "ranks.csv", corpus_votes.iteration_ranking(tiny_corpus))
    assert {r.group for r in read_ranking(out / "ranks.csv")} == {"r1", "solo"}


def test_missing_corpus_exits_non_zero(tmp_path, capsys):
    assert corpus_votes.main([str(tmp_path / "out"), "--corpus", str(tmp_path / "nowhere")]) == 1
    assert "corpus not found" in capsys.readouterr().err


@needs_corpus
def test_real_corpus_labels(tmp_path):
    written = corpus_votes.write_all(CORPUS, tmp_path)
    for path, count, _ in written:
        labels = read_ranking(path) if path.suffix == ".txt" or "ranking" in path.name else read_votes(path)
        assert len(labels) == count > 0
        files = [p for label in labels for p in ((label.path,) if hasattr(label, "path") else (label.a, label.b))]
        assert all(p.is_file() for p in files), path
    # Every youngbrioche vote pairs two files of one run, the later iteration winning.
    order = {row["path"]: (row["run"], int(row["iteration"] or 1)) for row in csv.DictReader((CORPUS / corpus_votes.YOUNGBRIOCHE / "iterations.csv").read_text().splitlines())}
    root = CORPUS / corpus_votes.YOUNGBRIOCHE
    for a, b, winner in corpus_votes.iteration_votes(CORPUS):
        (run_a, it_a), (run_b, it_b) = order[str(a.relative_to(root))], order[str(b.relative_to(root))]
        assert winner == "a" and run_a == run_b and it_a > it_b
    sizes = collections.Counter(run for run, _ in order.values())
    assert len(corpus_votes.iteration_votes(CORPUS)) == sum(n * (n - 1) // 2 for n in sizes.values())
