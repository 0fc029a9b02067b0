"""numba kernels over plain arrays and scalars (no model or network objects)."""
