"""A vision-language model as judge: it is shown the render (never the SVG source) and the prompt.

* :mod:`.rubric` — the versioned rubric (YAML) and strict parsing of the judge's JSON answers;
* :mod:`.settings` — which endpoints judge, and how to call them;
* :mod:`.client` — asking: the answer cache, concurrency, retries, token and cost accounting;
* :mod:`.tournament` — pairwise verdicts → Bradley–Terry ratings with bootstrap intervals.

The pointwise ``vlm`` measure (:mod:`scorer.measure.vlm`) and ``svgscore compare --pairwise``
(:mod:`scorer.compare.pairwise`) are built on these.
"""
