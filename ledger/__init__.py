"""Task Ledger: an event-sourced ledger of task state for distributed task queues."""

__version__ = "0.1.0"
