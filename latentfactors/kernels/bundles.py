"""The named tuples that kernels take in place of long argument lists.

A bundle is a :func:`collections.namedtuple` of arrays and scalars: Numba
types it field by field, caches kernels that take it, and a kernel unpacks it
once at its top, so the loops inside see plain arrays as before. Bundles that
one kernel module alone uses live next to it (:mod:`.sgd`, :mod:`.adam`,
:mod:`.mlp`); these two are shared.
"""

from __future__ import annotations

from collections import namedtuple

#: Factor rows and biases of users and items: ``P`` (n_users, k), ``Q`` (n_items, k),
#: ``bu`` (n_users,), ``bi`` (n_items,). The same shape holds their Adam moments or
#: gradients where a kernel wants those side by side.
Embeddings = namedtuple("Embeddings", "P Q bu bi")

#: Encoded training ratings: int32 ``users`` and ``items`` codes, float ``ratings``.
Ratings = namedtuple("Ratings", "users items ratings")
