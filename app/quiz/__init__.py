"""Teaching sessions: quiz sources, tile selection, the per-tile model feedback cache and reader metrics."""
