"""Integrations with task queues (``ledger.contrib.celery``).

Each integration imports its queue's own package, which stays an optional extra
(``pip install task-ledger[celery]``): this package imports nothing, so ``import ledger``
never imports a queue library.
"""
