"""Where Numba keeps the package's compiled kernels, decided before the first one is defined.

Numba picks a cache folder for a ``cache=True`` function when the function is
defined, i.e. when its module is imported: the folder set by
``NUMBA_CACHE_DIR``, else the ``__pycache__`` beside the source, else a
per-user folder under the home directory. When none can be written (the
package installed read-only and a ``HOME`` that does not exist, a common
container set-up) it raises, and ``import latentfactors.models`` would fail.
This module makes the same checks first and, when they all fail, points Numba
at a private folder in the temporary directory, or turns caching off if even
that is impossible. It says so in one logged warning.

:data:`CACHE` is the ``cache=`` every jitted function of the package uses;
``kernels/`` and ``data/`` import this module before defining any.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile

import numba
from numba.misc.appdirs import AppDirs

# The folders holding modules with cached jitted functions: Numba files each
# function's cache by the folder of its source.
_HERE = os.path.dirname(os.path.abspath(__file__))
_JITTED_DIRS = (os.path.join(_HERE, "kernels"), os.path.join(_HERE, "data"))


def _writable(path: str) -> bool:
    """Numba's own test of a cache folder: create it if needed, then a file in it."""
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def _cache_subpath(source_dir: str) -> str:
    """The folder Numba uses for ``source_dir`` inside a cache root (as its locators do)."""
    return "_".join([os.path.basename(source_dir), hashlib.sha1(source_dir.encode()).hexdigest()])


def _numba_can_cache(source_dir: str) -> bool:
    """Whether one of Numba's cache locators will accept a function of ``source_dir``.

    Mirrors ``numba.core.caching``: the user-provided folder, the in-tree
    ``__pycache__``, then the user-wide cache folder, in that order.
    """
    if numba.config.CACHE_DIR and _writable(
        os.path.join(numba.config.CACHE_DIR, _cache_subpath(source_dir))
    ):
        return True
    if _writable(os.path.join(source_dir, "__pycache__")):
        return True
    user_wide = AppDirs(appname="numba", appauthor=False).user_cache_dir
    return _writable(os.path.join(user_wide, _cache_subpath(source_dir)))


def _private_temp_dir() -> str | None:
    """A cache folder only this user can write to, in the temporary directory, or ``None``."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    name = "latentfactors-numba" if uid is None else f"latentfactors-numba-{uid}"
    path = os.path.join(tempfile.gettempdir(), name)
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return None
    # A folder someone else made (or a link to one) could hand us their compiled code.
    if not stat.S_ISDIR(info.st_mode) or (uid is not None and info.st_uid != uid):
        return None
    if uid is not None and info.st_mode & 0o077:
        return None
    return path if _writable(path) else None


def _configure() -> bool:
    """Make sure Numba can cache the package's functions; whether caching stays on."""
    if getattr(numba.config, "CACHE_LOCATOR_CLASSES", "") or ".zip" in _HERE:
        return True  # the user chose the locators, or Numba's zip locator takes everything
    if all(_numba_can_cache(d) for d in _JITTED_DIRS):
        return True
    log = logging.getLogger("latentfactors")
    path = _private_temp_dir()
    if path is None:
        log.warning(
            "latentfactors: no writable folder for Numba's cache (set NUMBA_CACHE_DIR); "
            "kernels are compiled afresh in every process"
        )
        return False
    # Set on the config rather than in os.environ: Numba reads it when a
    # function is defined, and other programs this process starts are left alone.
    numba.config.CACHE_DIR = path
    log.warning(
        "latentfactors: the package folder and the home directory are not writable; "
        "Numba's cache is in %s (set NUMBA_CACHE_DIR to choose)",
        path,
    )
    return True


#: ``cache=`` for every ``numba.njit`` of the package.
CACHE = _configure()
