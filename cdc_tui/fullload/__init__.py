"""Step 1: the consistent full load from the slot's exported snapshot (shared by both engines)."""
