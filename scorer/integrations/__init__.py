"""svgscore inside other harnesses: RL reward functions (:mod:`.rl`) and an inspect_ai scorer
(:mod:`.inspect_ai_scorer`), and the micro-batcher they and the HTTP service (:mod:`scorer.serve`)
share (:mod:`.batching`).

Each module imports its harness's package only where it needs it, so importing svgscore never
requires TRL or inspect_ai.
"""
