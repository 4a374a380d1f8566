"""Long-running loops: the projector, subscribers, dead-letter handling."""
