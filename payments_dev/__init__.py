"""Dev tooling, never deployed and never imported by deployed code: the local runtime on moto
(``local``), the fault-injection harness (``chaos``), the demo (``demo``) and the benchmarks
(``bench``). Its dependencies are the ``dev`` extra; it is not part of the package (``pip install .``
installs the deployed core and the operator's CLI only): the Makefile's ``.venv/.installed`` installs
the clone editable with the dev extra and puts the clone itself on the virtualenv's path.
"""
