"""Thin CLI scripts over one shared module for flags and wiring."""
