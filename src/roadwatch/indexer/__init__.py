"""The indexer: consumes detections, runs them through the processor chain, commits."""
