"""The local development stack, above the services: `clickmuncher up`, its demo, and the local Kafka
broker and cluster launcher (jars from Maven Central). Nothing below imports it."""
