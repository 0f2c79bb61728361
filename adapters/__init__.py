"""Everything that talks to a backend, one module per technology, chosen by URL scheme.

Only ``studio9.bootstrap`` imports this package, lazily, through its scheme tables.
"""
