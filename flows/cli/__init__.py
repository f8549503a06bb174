"""The ``scalpflow`` command line: one small module per command."""
