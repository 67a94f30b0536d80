"""Campaigns: programs -> verdicts (backends, oracle, workers) -> cases (store, repro)."""
