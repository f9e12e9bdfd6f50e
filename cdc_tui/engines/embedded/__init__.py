"""The embedded engine: read the slot with pgoutput, apply each source transaction to the target."""
