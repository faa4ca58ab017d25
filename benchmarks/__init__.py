"""Benchmarks: run with `make bench`. They print wall times and ratios; they are not tests."""
