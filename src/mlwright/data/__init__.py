"""Data input, schema inference and enforcement, and problem profiling (the ground floor)."""
