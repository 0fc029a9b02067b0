"""popdens benchmarks; run them all with ``python -m benchmarks`` (see ``__main__``)."""
