"""Public home of the data functions: loaders, splits and the synthetic generator.

Every loader returns the canonical frame: ``user``, ``item``, ``rating``
(float32) and ``timestamp`` (int64 seconds) when the source has one.
"""

from latentfactors.data import *  # noqa: F403
from latentfactors.data import __all__  # noqa: F401
