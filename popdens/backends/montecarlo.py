"""Monte Carlo backend (placeholder while it is being written)."""

from ..network import register_backend


def run(network, t_end, dt, **options):
    raise NotImplementedError("montecarlo backend is being written")


register_backend("montecarlo", run)
