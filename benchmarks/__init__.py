"""Benchmarks: `make bench` (`python -m benchmarks`) prints every figure of issue 11 against its baseline and writes
BENCHMARKS.md. They measure; they are not tests (tests/workflows/test_bench.py checks the harness on small sizes)."""
