"""Jitted kernels: arrays and scalars in, numbers out.

Only :mod:`latentfactors.models` calls these. Nothing here validates input:
Numba does not bounds-check, so every caller validates ids, shapes, dtypes and
finiteness first.
"""
