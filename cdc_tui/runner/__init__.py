"""The step runner and its process lease."""
