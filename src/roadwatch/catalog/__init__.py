"""The vehicle catalog and the producer that publishes detections drawn from it."""
