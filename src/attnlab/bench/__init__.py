"""Benchmarks behind ``benchmarks/*.py`` and ``attnlab bench``: interleaved timings reported as ratios."""
