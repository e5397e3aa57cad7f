"""Cache lines: prefetching rows, and arrays whose rows start on a line.

``prefetch_row(arr, row)`` asks the CPU to start loading a matrix row into
its cache. The SGD inner loop is bound by the latency of fetching factor rows, not by
arithmetic. Issuing the load of a row a few updates before it is needed
overlaps that latency with useful work. A prefetch is only a hint: it never
faults, changes no value and is free to be ignored, so results do not depend
on it.

``aligned_empty(shape, dtype)`` allocates an array that starts on a cache
line. NumPy puts a large array 16 bytes past a page boundary (the
allocator's header), so every 128-byte row of 32 float32 factors straddles
three cache lines instead of two: 1.5x the lines to fetch per update, and
1.5x the cache an item stripe needs.

With ``NUMBA_DISABLE_JIT=1`` a prefetch is a no-op and the values per line a
plain number (their ``_py_*`` twins).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils

from latentfactors._numba_setup import CACHE
from latentfactors.kernels._config import intrinsic_or

LINE_BYTES = 64


def _codegen(context, builder, signature, args):
    """A write prefetch of the address of ``array[index...]``."""
    array_type, *index_types = signature.args
    array = context.make_array(array_type)(context, builder, args[0])
    index = [
        context.cast(builder, value, index_type, types.intp)
        for value, index_type in zip(args[1:], index_types)
    ]
    ptr = cgutils.get_item_pointer(context, builder, array_type, array, index, wraparound=False)
    byte_ptr = ir.IntType(8).as_pointer()
    i32 = ir.IntType(32)
    fn = cgutils.get_or_insert_function(
        builder.module,
        ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32]),
        "llvm.prefetch.p0i8",
    )
    # (address, rw=1 write, locality=3 keep in all cache levels, cache type=1 data)
    builder.call(fn, [builder.bitcast(ptr, byte_ptr), i32(1), i32(3), i32(1)])
    return context.get_dummy_value()


def aligned_empty(shape, dtype) -> np.ndarray:
    """An uninitialised C-ordered array whose first element starts a cache line.

    Rows whose size is a multiple of :data:`LINE_BYTES` then each fill whole
    lines. The array is a view of a slightly larger buffer, which it keeps alive.
    """
    dtype = np.dtype(dtype)
    shape = tuple(int(n) for n in np.atleast_1d(np.asarray(shape, dtype=np.int64)))
    nbytes = math.prod(shape) * dtype.itemsize
    buf = np.empty(nbytes + LINE_BYTES, dtype=np.uint8)
    skip = -buf.ctypes.data % LINE_BYTES
    return buf[skip : skip + nbytes].view(dtype).reshape(shape)


def _py_prefetch(arr, *index):
    """A hint the interpreter has no use for: nothing to do."""


def _py_line_values(arr):
    return max(1, LINE_BYTES // arr.itemsize)


@intrinsic_or(_py_prefetch)
def _prefetch(typingctx, arr, row, col):
    """Prefetch the cache line holding ``arr[row, col]`` (a 2-D array), for writing."""
    if not (
        isinstance(arr, types.Array)
        and arr.ndim == 2
        and isinstance(row, types.Integer)
        and isinstance(col, types.Integer)
    ):
        return None
    return types.void(arr, row, col), _codegen


@intrinsic_or(_py_prefetch)
def prefetch_at(typingctx, arr, idx):
    """Prefetch the cache line holding ``arr[idx]`` (a 1-D array); ``idx`` must be valid."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and isinstance(idx, types.Integer)):
        return None
    return types.void(arr, idx), _codegen


@intrinsic_or(_py_line_values)
def _line_values(typingctx, arr):
    """Values of ``arr``'s dtype per cache line, as a compile-time constant."""
    if not isinstance(arr, types.Array):
        return None
    step = max(1, LINE_BYTES // (arr.dtype.bitwidth // 8))

    def codegen(context, builder, signature, args):
        return context.get_constant(types.intp, step)

    return types.intp(arr), codegen


@numba.njit(inline="always", cache=CACHE)
def prefetch_row(arr, row):
    """Prefetch every cache line of ``arr[row]``; ``row`` must be a valid row.

    The row's values must lie one after another (rows may be any distance
    apart, as in Adam's interleaved records). Steps one cache line of values
    at a time from the row's start, so a row that does not start on a line
    boundary may miss its last line (a hint lost, never a value changed).
    """
    for col in range(0, arr.shape[1], _line_values(arr)):
        _prefetch(arr, row, col)
