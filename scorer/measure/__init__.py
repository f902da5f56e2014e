"""Stage 3 — measure: the registry of measures (per-file checks, batched models) and the built-ins."""
