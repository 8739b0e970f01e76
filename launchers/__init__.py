"""Thin CLI scripts over `cli.py` (flags into a checked plan) and `run.py` (the tuning run and its results)."""
