"""In-memory adapters: production code for embedded use and tests, held to the same contracts."""
