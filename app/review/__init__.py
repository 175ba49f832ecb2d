"""Review logic: the tile detail view and its form, the review queue, who is reviewing, and agreement."""
