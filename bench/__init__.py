"""The benchmark suite (``python -m bench.run``). Scripts that print figures; no assertions on time."""
