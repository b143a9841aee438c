"""The synthetic sample zone's generator (run it with scripts/make_sample.py)."""
