"""The Detections API: users and tokens, detections, counts per make, live alerts."""
