"""``svgscore serve``: svgscore as an HTTP JSON service (Starlette on uvicorn; the serve extra).

:mod:`.app` is the application, :mod:`.cli` the command; the micro-batcher that shares scoring
passes between concurrent requests is :mod:`scorer.integrations.batching` (the inspect_ai scorer
uses it too).
"""
