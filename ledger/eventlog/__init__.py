"""Event logs: one protocol (``base.EventLog``), a Kafka adapter and an embedded SQLite one."""
