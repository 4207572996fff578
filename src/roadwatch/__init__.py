"""roadwatch: index a live stream of vehicle detections, alert on watchlists, serve them."""

__version__ = "0.1.0"
