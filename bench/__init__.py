"""Benchmarks of the pipeline: ``make bench`` runs :mod:`bench.run`.

Not part of the test suite (``tests/test_bench.py`` runs a seconds-long smoke
version). Every figure is the median, min and max of several runs; every
comparison is computed pair by pair within one run, A and B interleaved.
"""
