"""Everything roadwatch says to Kafka: the clients' options, the start-up check, the topics
and ACLs, and the one hardened way every process reads a topic."""
