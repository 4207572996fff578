"""Where detections and users are kept: one interface per kind, one module per backend."""
