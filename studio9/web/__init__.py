"""The route kit: what every context's routes share (keyset paging, declared responses).

It imports no context and nothing of ``studio9.api``, so a context's ``api`` module can use it
without importing the app; ``studio9.api.app`` is the one module that imports every context's routes.
"""
