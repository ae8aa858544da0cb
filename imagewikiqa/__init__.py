"""imagewikiqa package."""
