"""Dev tooling, never deployed and never imported by deployed code: the local runtime on moto
(``local``), the fault-injection harness (``chaos``), the demo (``demo``) and the benchmarks
(``bench``). Its dependencies are the ``dev`` extra (``pip install '.[dev]'``).
"""
