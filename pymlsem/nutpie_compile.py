"""Faster compilation of a PyMC model for nutpie's numba backend.

nutpie's ``compile_pymc_model`` spends most of a first fit's time in numba: its C callbacks unpack every
``pm.Data`` array through generic, slow-to-type helpers, and numba re-optimises the (already compiled and
disk-cached) log-density inside the callback. :func:`fast_compile` builds the same PyTensor functions with
nutpie's own helpers, then writes the callbacks out explicitly, compiles the inner function first and the
thin callback with LLVM optimisation off, and caches the finished callbacks on disk (keyed by the
PyTensor graph), so that a fit of a model compiled before, in any process, loads its machine code instead
of generating it again. Same log-density, gradient and draws (benchmarks/compile_time.py).
It relies on nutpie internals, so
:func:`compile_nutpie_model` falls back to nutpie's compiler when they change.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Any

import numpy as np
import pymc as pm

from pymlsem.build.rewrites import compile_mode

#: the C callback of the log-density and its gradient; ``{size_check}`` may refuse a point of another size
LOGP_TEMPLATE = """
def logp_numba(dim, x_, out_, logp_, user_data_):
{size_check}    try:
        x = numba.carray(x_, (dim,))
        out = numba.carray(out_, (dim,))
        logp = numba.carray(logp_, (1,))
        shared = numba.carray(user_data_, (), record_dtype)["shared"]
{reads}
        logp_val, grad = inner(x{args})
    except Exception:  # noqa: BLE001
        return 1
    # after the try block: inside it, numba checks for an exception after every operation and (at LLVM
    # level 1, pymlsem's) keeps two reference-count updates per element of this loop, ~15 ns an element
    if grad.shape[0] != dim:
        return -1
    logp[0] = logp_val
    finite = True
    for i in range(dim):  # element by element: an array assignment compiles seconds of checks
        out[i] = grad[i]
        finite = finite and np.isfinite(grad[i])
    if not finite:
        return 3
    if not np.isfinite(logp_val):
        return 4
    return 0
"""

#: the C callback of the expanded values (constrained variables and deterministics)
EXPAND_TEMPLATE = """
def expand_numba(dim, expanded, x_, out_, user_data_):
{size_check}    try:
        x = numba.carray(x_, (dim,))
        out = numba.carray(out_, (expanded,))
        shared = numba.carray(user_data_, (), record_dtype)["shared"]
{reads}
        (values,) = inner(x{args})
    except Exception:  # noqa: BLE001
        return -2
    if values.shape[0] != expanded:  # after the try block, as in the log-density's callback
        return -1
    for i in range(expanded):
        out[i] = values[i]
    return 0
"""
_LOGP_SIZE_CHECK = "    if dim != n_dim:\n        return -1\n"
_EXPAND_SIZE_CHECK = "    if dim != n_dim or expanded != n_expanded:\n        return -1\n"


def wrapper_source(template: str, keys: list[str], ndims: list[int], size_check: str = "") -> str:
    """Source of a C callback that reads each shared array from the user data and calls ``inner``.

    nutpie's own wrapper builds the tuple of shared arrays with ``literal_unroll`` and inlined overloads,
    whose typing and lowering cost grows quickly with the number of ``pm.Data`` variables; this one is
    written out explicitly, one ``numba.carray`` per array. ``size_check`` (source lines) may refuse
    points of another size than the compiled model's.
    """
    reads = []
    for i, (key, ndim) in enumerate(zip(keys, ndims, strict=True)):
        shape = "".join(f'int(shared["shape"]["{key}"][{d}]), ' for d in range(ndim))
        reads.append(
            f'        a{i} = numba.carray(void_pointer(shared["data"]["{key}"][()]), ({shape}), dtype{i})'
        )
    args = "".join(f", a{i}" for i in range(len(keys)))
    return template.format(reads="\n".join(reads), args=args, size_check=size_check)


def callback_signatures() -> tuple[Any, Any]:
    """numba signatures of nutpie's two C callbacks: log-density with gradient, and expanded values."""
    import numba

    types = numba.types
    double = types.CPointer(types.double)
    logp = types.int64(types.uint64, double, double, double, types.voidptr)
    expand = types.int64(types.uint64, types.uint64, double, double, types.voidptr)
    return logp, expand


def compile_inner(inner: Any, arrays: list[tuple[np.dtype, int]]) -> None:
    """Compile PyTensor's numba function ``inner`` for a point vector and arrays of these (dtype, ndim)."""
    import numba

    types = numba.types
    arg_types = [types.Array(types.float64, 1, "C")] + [
        types.Array(numba.from_dtype(np.dtype(dtype)), ndim, "C") for dtype, ndim in arrays
    ]
    try:  # PyTensor's function takes its inputs as *args (one StarArgTuple) or as separate arguments
        inner.compile((types.StarArgTuple(tuple(arg_types)),))
    except TypeError:
        inner.compile(tuple(arg_types))


def _callback_cache_key(source: str, inner: Any, namespace: dict[str, Any]) -> str | None:
    """A key naming the compiled callback in numba's disk cache, or None when it must not be cached.

    The callback's machine code contains the inner function's (numba links it in), so the key combines
    the callback's source with PyTensor's cache key of the inner function (a hash of its graph; None when
    PyTensor could not cache it), the array dtypes, the user-data layout, the constants and the numba and
    nutpie versions.
    """
    import numba
    import nutpie
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    inner_key = CACHED_SRC_FUNCTIONS.get(getattr(inner, "py_func", None))
    if inner_key is None:
        return None
    baked = sorted((name, str(value)) for name, value in namespace.items() if name.startswith("dtype"))
    constants = sorted((name, value) for name, value in namespace.items() if name.startswith("n_"))
    text = repr(
        (
            source,
            inner_key,
            baked,
            constants,
            str(namespace["record_dtype"]),
            numba.__version__,
            nutpie.__version__,
        )
    )
    return "pymlsem_" + hashlib.sha256(text.encode()).hexdigest()


def _make_callback(template, name, inner, keys, shared_data, record_dtype, constants, c_sig, size_check):
    import numba
    from nutpie.compile_pymc import address_as_void_pointer
    from pytensor.link.numba.cache import compile_numba_function_src

    source = wrapper_source(template, keys, [shared_data[k].ndim for k in keys], size_check)
    namespace = {
        # numba pickles a cached function's globals by module name: name an importable module
        "__name__": __name__,
        "numba": numba,
        "np": np,
        "inner": inner,
        "record_dtype": record_dtype,
        "void_pointer": address_as_void_pointer,
        **{f"dtype{i}": shared_data[k].dtype for i, k in enumerate(keys)},
        **constants,
    }
    cache_key = _callback_cache_key(source, inner, namespace)
    callback = compile_numba_function_src(source, name, global_env=namespace, cache_key=cache_key)
    callback.__module__ = __name__
    # Compile (or load from PyTensor's disk cache) the inner function first. An uncached callback is then
    # compiled with LLVM's module optimisation off: the inner function's code is optimised already and
    # re-optimising it inside the callback costs many seconds for nothing.
    # (the callback passes the arrays as ``*args``: numba types them as one StarArgTuple)
    compile_inner(inner, [(shared_data[k].dtype, shared_data[k].ndim) for k in keys])
    if cache_key is not None:
        # Cached: the finished callback goes to (and next time comes from) PyTensor's numba cache folder,
        # through PyTensor's cache locator, so a warm start skips numba entirely. Compiled at the default
        # optimisation level: at level 0 LLVM keeps process-specific addresses that numba cannot cache.
        return numba.cfunc(c_sig, cache=True)(callback)
    level = numba.config.OPT
    numba.config.OPT = type(level)(0)
    try:
        return numba.cfunc(c_sig)(callback)
    finally:
        numba.config.OPT = level


def compile_nutpie_model(model: pm.Model) -> Any:
    """Compile ``model`` for nutpie's numba backend, falling back to ``nutpie.compile_pymc_model``.

    :func:`fast_compile` reaches into nutpie's private helpers (checked with nutpie 0.16); if they are
    missing or behave differently, nutpie's own compiler is used, with a warning.
    """
    import nutpie

    try:
        return fast_compile(model)
    except Exception as err:
        warnings.warn(
            f"pymlsem's faster nutpie compilation failed ({err!r}); using nutpie.compile_pymc_model",
            RuntimeWarning,
            stacklevel=2,
        )
        return nutpie.compile_pymc_model(model)


def fast_compile(model: pm.Model) -> Any:
    """Compile ``model`` for nutpie's numba backend (what ``nutpie.compile_pymc_model`` does, faster).

    The log-density/gradient and the deterministics are compiled by PyTensor exactly as nutpie does it;
    only the C callbacks around them differ (see :func:`_wrapper_source`). The result is a
    ``nutpie.compile_pymc.CompiledPyMCModel`` and supports ``with_data``.

    Parameters
    ----------
    model
        The PyMC model.

    Returns
    -------
    nutpie.compile_pymc.CompiledPyMCModel
    """
    import nutpie
    import nutpie.compile_pymc as ncp
    from pymc.initial_point import make_initial_point_fn

    needed = ("_make_functions", "_wrap_with_lock", "make_user_data", "_prepare_dims_and_coords")
    if not all(hasattr(ncp, name) for name in needed):  # another nutpie version: its own compiler
        return nutpie.compile_pymc_model(model)

    initial_point_fn = make_initial_point_fn(
        model=model, default_strategy="support_point", jitter_rvs=set(model.free_RVs), return_transformed=True
    )
    n_dim, n_expanded, logp_fn_pt, expand_fn_pt, flat_initial_point_fn, shape_info, reparameterized = (
        ncp._make_functions(
            model,
            mode=compile_mode("NUMBA"),
            compute_grad=True,
            join_expanded=True,
            pymc_initial_point_fn=ncp._wrap_with_lock(initial_point_fn),
        )
    )
    shared_data: dict[str, np.ndarray] = {}
    shared_var_keys = {}
    for var in [*logp_fn_pt.get_shared(), *expand_fn_pt.get_shared()]:
        if var in shared_var_keys:
            continue
        key = f"shared{len(shared_var_keys)}"
        shared_data[key] = np.array(var.get_value(), order="C", copy=True)
        shared_data[key].flags.writeable = False
        shared_var_keys[var] = key
    user_data = ncp.make_user_data(shared_var_keys, shared_data)

    logp_sig, expand_sig = callback_signatures()
    logp_c = _make_callback(
        LOGP_TEMPLATE,
        "logp_numba",
        logp_fn_pt.vm.jit_fn,
        [shared_var_keys[v] for v in logp_fn_pt.get_shared()],
        shared_data,
        user_data.dtype,
        {"n_dim": n_dim},
        logp_sig,
        _LOGP_SIZE_CHECK,
    )
    expand_c = _make_callback(
        EXPAND_TEMPLATE,
        "expand_numba",
        expand_fn_pt.vm.jit_fn,
        [shared_var_keys[v] for v in expand_fn_pt.get_shared()],
        shared_data,
        user_data.dtype,
        {"n_dim": n_dim, "n_expanded": n_expanded},
        expand_sig,
        _EXPAND_SIZE_CHECK,
    )
    dims, coords = ncp._prepare_dims_and_coords(model, shape_info, reparameterized)
    return ncp.CompiledPyMCModel(
        _n_dim=n_dim,
        dims=dims,
        _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=logp_c,
        compiled_expand_func=expand_c,
        initial_point_func=flat_initial_point_fn,
        shared_data=shared_data,
        shared_var_keys=shared_var_keys,
        user_data=user_data,
        n_expanded=n_expanded,
        shape_info=shape_info,
        logp_func=logp_fn_pt,
        expand_func=expand_fn_pt,
        reparameterized_names=reparameterized,
    )
