"""Local Kafka brokers and clusters for development and tests (KRaft, jars from Maven Central)."""
