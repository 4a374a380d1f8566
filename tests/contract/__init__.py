"""Contract tests: one abstract suite per port, run against every backend."""
