"""Executors that run the Scorer's stages elsewhere than this process's worker pool (Ray)."""
