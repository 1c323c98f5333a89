"""A real single-node Apache Kafka broker (KRaft) on 127.0.0.1, from jars fetched with Maven."""
