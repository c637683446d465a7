"""The benchmark suite (``python -m payments_dev.bench.run``). Scripts that print figures; no assertions on time."""
