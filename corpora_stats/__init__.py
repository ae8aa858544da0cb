"""corpora_stats package."""
