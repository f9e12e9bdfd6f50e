"""The kafka_connect engine: Debezium on Kafka Connect, driven through its REST API."""
