"""Synthetic images drawn from scratch (the demo dataset's scenes)."""
