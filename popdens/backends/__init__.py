"""Solvers that run a prepared :class:`popdens.Network`: ``density`` and ``montecarlo``."""
