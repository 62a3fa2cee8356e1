"""The few Numba intrinsics that let cached kernels touch DPDK memory.

A cached kernel may not reference cffi functions, so C is reached through an
address that arrives as an integer argument (`call_c`), and mbuf memory is
read and written through raw addresses (`view_u8`, `load_*`, `store_*`).
Everything here caches (`@njit(cache=True)` callers compile once per machine).
"""
from llvmlite import ir
from numba import types
from numba.extending import intrinsic
from numba.np.arrayobj import populate_array

_I64 = ir.IntType(64)


@intrinsic
def call_c(typingctx, fn, a, b, c, d):
    """Call `int64_t fn(u64, u64, u64, u64)` at address `fn`; see `_build.py`."""
    for t in (fn, a, b, c, d):
        if not isinstance(t, types.Integer):
            return None
    sig = types.int64(fn, a, b, c, d)

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(_I64, [_I64] * 4)
        vals = [context.cast(builder, v, t, types.uint64)
                for v, t in zip(args, signature.args)]
        ptr = builder.inttoptr(vals[0], fnty.as_pointer())
        return builder.call(ptr, vals[1:])

    return sig, codegen


def _make_view(nbt, size):
    @intrinsic
    def view(typingctx, addr, n):
        if not isinstance(addr, types.Integer) or not isinstance(n, types.Integer):
            return None
        aryty = types.Array(nbt, 1, "C")
        sig = aryty(addr, n)

        def codegen(context, builder, signature, args):
            ary = context.make_array(aryty)(context, builder)
            intp = context.get_value_type(types.intp)
            ptr = builder.inttoptr(args[0], context.get_value_type(nbt).as_pointer())
            populate_array(ary, data=ptr, shape=[context.cast(builder, args[1], signature.args[1], types.intp)],
                           strides=[ir.Constant(intp, size)], itemsize=ir.Constant(intp, size), meminfo=None)
            return ary._getvalue()

        return sig, codegen

    return view


# view_u8(addr, n) / view_u32(addr, n): an array of n items at integer address
# `addr` (no copy, no owner). Unlike `numba.carray` these work in kernels
# compiled without reference counting (see `nperf.kernels.jit`).
view_u8 = _make_view(types.uint8, 1)
view_u32 = _make_view(types.uint32, 4)


@intrinsic
def array_addr(typingctx, arr):
    """The address of an array's first element (valid for slices too)."""
    if not isinstance(arr, types.Array):
        return None
    sig = types.uint64(arr)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.ptrtoint(ary.data, _I64)

    return sig, codegen


def _make_load(nbt):
    @intrinsic
    def load(typingctx, addr):
        if not isinstance(addr, types.Integer):
            return None
        sig = nbt(addr)

        def codegen(context, builder, signature, args):
            llty = context.get_value_type(nbt)
            ptr = builder.inttoptr(args[0], llty.as_pointer())
            return builder.load(ptr, align=1)

        return sig, codegen

    return load


def _make_store(nbt):
    @intrinsic
    def store(typingctx, addr, val):
        if not isinstance(addr, types.Integer) or not isinstance(val, types.Integer):
            return None
        sig = types.void(addr, val)

        def codegen(context, builder, signature, args):
            llty = context.get_value_type(nbt)
            ptr = builder.inttoptr(args[0], llty.as_pointer())
            builder.store(context.cast(builder, args[1], signature.args[1], nbt), ptr, align=1)
            return context.get_dummy_value()

        return sig, codegen

    return store


load_u16 = _make_load(types.uint16)
load_u32 = _make_load(types.uint32)
load_u64 = _make_load(types.uint64)
store_u16 = _make_store(types.uint16)
store_u32 = _make_store(types.uint32)
store_u64 = _make_store(types.uint64)

__all__ = ["call_c", "view_u8", "view_u32", "array_addr", "load_u16", "load_u32", "load_u64", "prefetch", "rdtsc",
           "store_u16", "store_u32", "store_u64"]


@intrinsic
def prefetch(typingctx, addr):
    """Ask for the cache line at integer address `addr` (llvm.prefetch: read, high locality)."""
    if not isinstance(addr, types.Integer):
        return None
    sig = types.void(addr)

    def codegen(context, builder, signature, args):
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = builder.module.declare_intrinsic("llvm.prefetch", fnty=ir.FunctionType(
            ir.VoidType(), [i8p, i32, i32, i32]))
        ptr = builder.inttoptr(context.cast(builder, args[0], signature.args[0], types.uint64), i8p)
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def rdtsc(typingctx):
    """The CPU's time-stamp counter (llvm.readcyclecounter), without a call into C."""
    sig = types.int64()

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.readcyclecounter", fnty=ir.FunctionType(_I64, []))
        return builder.call(fn, [])

    return sig, codegen
