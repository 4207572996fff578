"""What every long-running process is built on: retrying through outages, readiness and its
HTTP probe. It knows no feature."""
