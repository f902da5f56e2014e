"""Streaming: results come out while the input is still being read, with a bounded read-ahead."""

from scorer import ScoreItem, Scorer

from .conftest import STRUCTURAL, svg

PROMPT = "a pelican riding a bicycle"


def test_results_stream_while_the_input_is_still_being_read():
    pulled = 0

    def items():
        nonlocal pulled
        for i in range(120):
            pulled += 1
            yield ScoreItem(None, PROMPT, svg(f'<circle cx="{100 + i}" cy="150" r="40"/>').encode())

    with Scorer(STRUCTURAL, jobs=2) as scorer:
        results = scorer.score_items(items())
        first = next(results)
        pulled_at_first = pulled
        rest = list(results)
    assert first.ok and len(rest) == 119
    # The read-ahead is a few tasks per worker, not the whole input: memory is O(batch).
    assert pulled_at_first <= 30, pulled_at_first


def test_score_dir_yields_every_file_in_sorted_order_whatever_finishes_first(tmp_path):
    # Two workers finish in any order; results still come out in the order of the files.
    for i in range(12):
        (tmp_path / f"{i:02d}.svg").write_text(svg(f'<rect x="{10 * i}" y="10" width="50" height="50"/>'))
    with Scorer(STRUCTURAL, jobs=2) as scorer:
        paths = [r.path for r in scorer.score_dir(tmp_path)]
    assert paths == [str(tmp_path / f"{i:02d}.svg") for i in range(12)]
