"""``python -m popdens``: the same as the ``popdens`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
