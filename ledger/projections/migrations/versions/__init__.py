"""The revisions, oldest first: ``NNNN_name.py`` with ``revision = "NNNN_name"``."""
