"""Benchmarks of the offline plan and the test suite (`./dev bench`); never part of the tests."""
