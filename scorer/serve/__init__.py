"""``svgscore serve``: svgscore as an HTTP JSON service (Starlette on uvicorn; the serve extra).

:mod:`.app` is the application, :mod:`.batcher` the micro-batcher that shares scoring passes
between concurrent requests, :mod:`.cli` the command.
"""
