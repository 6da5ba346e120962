"""Benchmarks (docs/ARCHITECTURE.md "Performance targets"; CONTRIBUTING.md "Benchmarks")."""
