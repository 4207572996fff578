"""Provisioning of the local Kafka, PostgreSQL and FerretDB servers that roadwatch runs on."""
