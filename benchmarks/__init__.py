"""Performance benchmarks; each module runs on its own (see README.md)."""
