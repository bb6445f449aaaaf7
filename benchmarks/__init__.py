"""Benchmark harness: xploss against each library's native peer, in one process.

Run ``python -m benchmarks --help``. Each comparison is timed interleaved
(xploss and the peer alternate repetitions) on every backend and device the
adapters in ``xploss.backends`` find; the table of ratios (xploss / native) is
printed and written to ``benchmarks/results/<machine>.md``.
"""
