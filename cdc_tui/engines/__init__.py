"""Replication engines: embedded (pgoutput) and Kafka Connect (Debezium)."""
