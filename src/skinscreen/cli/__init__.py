"""Command-line interface: one module per verb, loaded lazily (``--version`` imports nothing heavy)."""
