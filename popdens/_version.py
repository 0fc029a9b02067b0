"""The popdens version (one place; ``popdens.__version__``)."""

__version__ = "0.1.0"
