"""The self-describing model package: save, verify, load, and the golden-example check."""
