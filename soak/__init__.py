"""The soak: the whole of roadwatch on a three-broker Kafka cluster under steady load,
through a seeded schedule of crashes and outages, checked from outside at the end.

`make soak` runs it for SOAK_SECONDS (600); tests/integration/test_soak.py runs a short one
in `make test`. See docs/reliability.md for what it shows.
"""
