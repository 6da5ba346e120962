"""Benchmarks (DESIGN.md "Performance targets")."""
