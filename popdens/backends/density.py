"""Density backend (placeholder while it is being written)."""

from ..network import register_backend


def run(network, t_end, dt, **options):
    raise NotImplementedError("density backend is being written")


register_backend("density", run)
