"""Evaluation of the whole system on recorded and made data (liveness rates, time to match)."""
