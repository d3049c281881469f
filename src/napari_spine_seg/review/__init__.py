"""A review session: queue, per-image status, autosaved corrections, export."""
