"""The domain: task statuses and their precedence, the events, the folds and the aggregates.

Pure Python with no I/O. It imports only the standard library, ``pydantic`` and
``eventsourcing.domain`` (``tests/unit/test_domain_imports.py`` enforces it), so every
other layer can depend on it and it depends on none of them.
"""
