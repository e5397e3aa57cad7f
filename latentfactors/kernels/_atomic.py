"""Atomic operations on int64 array elements, for threads that share a kernel.

Numba has no atomics on the CPU, so these emit LLVM's atomic instructions
(sequentially consistent): ``fetch_add(arr, i, v)`` adds ``v`` to ``arr[i]``
and returns the old value; ``compare_exchange(arr, i, old, new)`` sets
``arr[i]`` to ``new`` if it holds ``old`` and says whether it did; ``load(arr,
i)`` and ``store(arr, i, v)`` read and write ``arr[i]`` so that every write a
thread made before a ``store`` is seen by a thread that then ``load``s the
stored value. The index is not checked.

With ``NUMBA_DISABLE_JIT=1`` each is its plain-Python twin (``_py_*``): a
read or a write of ``arr[idx]``, which is all it needs to be on one thread.
"""

from __future__ import annotations

from numba import types
from numba.core import cgutils

from latentfactors.kernels._config import intrinsic_or

ORDER = "seq_cst"


def _pointer(context, builder, signature, args):
    array_type, index_type = signature.args[:2]
    array = context.make_array(array_type)(context, builder, args[0])
    index = context.cast(builder, args[1], index_type, types.intp)
    return cgutils.get_item_pointer(context, builder, array_type, array, [index], wraparound=False)


def _pointer_and_value(context, builder, signature, args):
    """The element's pointer, and the third argument as an int64."""
    value = context.cast(builder, args[2], signature.args[2], types.int64)
    return _pointer(context, builder, signature, args), value


def _int64_array(arr, idx, write=False):
    """An aligned 1-D int64 array (writable if ``write``) and an integer index."""
    return (
        isinstance(arr, types.Array)
        and arr.ndim == 1
        and arr.dtype == types.int64
        and arr.aligned
        and (arr.mutable or not write)
        and isinstance(idx, types.Integer)
    )


def _py_fetch_add(arr, idx, value):
    old = arr[idx]
    arr[idx] = old + value
    return old


def _py_compare_exchange(arr, idx, expected, value):
    if arr[idx] == expected:
        arr[idx] = value
        return True
    return False


def _py_load(arr, idx):
    return arr[idx]


def _py_store(arr, idx, value):
    arr[idx] = value


@intrinsic_or(_py_fetch_add)
def fetch_add(typingctx, arr, idx, value):
    """``old = arr[idx]; arr[idx] += value; return old``, atomically."""
    if not (_int64_array(arr, idx, write=True) and isinstance(value, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        ptr, val = _pointer_and_value(context, builder, signature, args)
        return builder.atomic_rmw("add", ptr, val, ORDER)

    return types.int64(arr, idx, value), codegen


@intrinsic_or(_py_compare_exchange)
def compare_exchange(typingctx, arr, idx, expected, value):
    """If ``arr[idx] == expected``, set it to ``value`` and return True; else False. Atomic."""
    if not (
        _int64_array(arr, idx, write=True)
        and isinstance(expected, types.Integer)
        and isinstance(value, types.Integer)
    ):
        return None

    def codegen(context, builder, signature, args):
        ptr = _pointer(context, builder, signature, args)
        old = context.cast(builder, args[2], signature.args[2], types.int64)
        new = context.cast(builder, args[3], signature.args[3], types.int64)
        result = builder.cmpxchg(ptr, old, new, ORDER, ORDER)
        return builder.extract_value(result, 1)

    return types.boolean(arr, idx, expected, value), codegen


@intrinsic_or(_py_load)
def load(typingctx, arr, idx):
    """``arr[idx]``, atomically."""
    if not _int64_array(arr, idx):
        return None

    def codegen(context, builder, signature, args):
        ptr = _pointer(context, builder, signature, args)
        return builder.load_atomic(ptr, ORDER, 8)

    return types.int64(arr, idx), codegen


@intrinsic_or(_py_store)
def store(typingctx, arr, idx, value):
    """``arr[idx] = value``, atomically."""
    if not (_int64_array(arr, idx, write=True) and isinstance(value, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        ptr, val = _pointer_and_value(context, builder, signature, args)
        builder.store_atomic(val, ptr, ORDER, 8)
        return context.get_dummy_value()

    return types.void(arr, idx, value), codegen
