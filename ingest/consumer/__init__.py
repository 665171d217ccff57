"""The consumer process: Kafka into the database, exactly once (architecture §5)."""
