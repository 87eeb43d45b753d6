"""Compiled engine families: one machine-code log-density per family, compiled once per machine.

A family's graph (``family_graph`` of its module, :mod:`pymlsem.engine.families`) has no model-
specific constant or static shape, so its compiled form serves every model of the family. It is compiled by
PyTensor's numba backend and wrapped in two C callbacks for nutpie (log-density with gradient; expanded
values), which read the point's size and every data array's shape at run time. The callbacks are cached on
disk (numba's cache, in PyTensor's cache folder) under a key made of the family, a hash of the source files
that define its graph and the versions of the libraries that compile it. Loading a family therefore needs
neither PyTensor nor numba's compiler: its callbacks are defined from a fixed source and numba finds their
machine code under that key. Only the first fit of a family on a machine (or after an upgrade) compiles, and
says so.
"""

from __future__ import annotations

import ast
import hashlib
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pymlsem.build.rewrites import compile_mode
from pymlsem.engine.binding import ANY_PRIOR, base_family
from pymlsem.engine.families import DESCRIPTION, EXPECTED_SECONDS, FAMILIES, MODULES, WARMUP_FAMILIES
from pymlsem.nutpie_compile import (
    EXPAND_TEMPLATE,
    LOGP_TEMPLATE,
    callback_signatures,
    compile_inner,
    wrapper_source,
)

__all__ = [
    "EXPECTED_SECONDS",
    "FAMILIES",
    "WARMUP_FAMILIES",
    "CompiledFamily",
    "code_fingerprint",
    "engine_key",
    "expected_seconds",
    "family_inputs",
    "load_family",
    "shared_family",
]


#: files whose code shapes every family's compiled graph; each family's module adds its own
#: (``GRAPH_SOURCES``, and ``KERNEL_SOURCES`` for a family written by hand): a change to any of them compiles
#: the families that read it again
_COMMON_SOURCES = (
    "engine/binding.py",
    "engine/priors.py",
    "engine/compiled.py",
    "nutpie_compile.py",
    "build/parameters.py",
    "build/rewrites.py",
    "priors.py",
)
_LOADED: dict[str, CompiledFamily] = {}


@dataclass(frozen=True)
class CompiledFamily:
    """The two C callbacks of a family and the layout of the data they read.

    Attributes
    ----------
    family
        The family's name.
    logp, expand
        numba ``cfunc`` objects (log-density with gradient; expanded values).
    record_dtype
        The numpy record type of the user data the callbacks read (pointers and shapes of the inputs).
    keys
        The user-data key of each input, in the order of the family's inputs.
    compile_seconds
        Seconds spent loading (or, the first time, compiling) the callbacks in this process.
    compiled_now
        Whether this process compiled the family (the disk cache did not have it).
    """

    family: str
    logp: Any
    expand: Any
    record_dtype: np.dtype
    keys: tuple[str, ...]
    compile_seconds: float
    compiled_now: bool


def engine_key(family: str) -> str:
    """The disk-cache key of a family's callbacks on this machine and library versions."""
    import numba
    import nutpie
    import pymc
    import pytensor

    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    module = MODULES[family]
    kernel_sources = getattr(module, "KERNEL_SOURCES", {}).get(family, ())
    for name in (*_COMMON_SOURCES, *module.GRAPH_SOURCES, *kernel_sources):
        digest.update(code_fingerprint((root / name).read_text()).encode())
    versions = (
        numba.__version__,
        nutpie.__version__,
        pymc.__version__,
        pytensor.__version__,
        np.__version__,
        sys.version,
        platform.machine(),
    )
    digest.update(repr((family, versions)).encode())
    return f"pymlsem_engine_{family}_{digest.hexdigest()[:32]}"


def code_fingerprint(source: str) -> str:
    """What of a Python source shapes the code it compiles to: its syntax tree without docstrings.

    Comments, docstrings, blank lines and formatting do not enter, so editing them leaves the families'
    disk-cache keys (:func:`engine_key`) as they were; any change to the code changes the fingerprint.
    """
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def expected_seconds(family: str) -> int:
    """Rough first compile of ``family`` with empty caches: its own entry of :data:`EXPECTED_SECONDS`, or its
    default family's."""
    return EXPECTED_SECONDS.get(family, EXPECTED_SECONDS[base_family(family)])


def shared_family(family: str) -> str:
    """The family whose compiled callbacks ``family`` uses: itself, or the family it shares a hand-written
    kernel with (its module's ``SHARED_KERNELS``: families that compute the same log-density over the same
    inputs are compiled and cached once)."""
    return getattr(MODULES[family], "SHARED_KERNELS", {}).get(family, family)


def load_family(family: str, *, progress: bool = True, compile_missing: bool = True) -> CompiledFamily | None:
    """The compiled callbacks of ``family``: from this process, from the disk cache, or compiled now.

    Parameters
    ----------
    family
        An engine family (:data:`FAMILIES`).
    progress
        Print a line before compiling (the first fit of a family on a machine).
    compile_missing
        Compile the family when the disk cache does not have it; otherwise return None then.
    """
    if family in _LOADED:
        return _LOADED[family]
    shared = shared_family(family)
    if shared != family:  # its callbacks are another family's: compiled and cached once for both
        loaded = load_family(shared, progress=progress, compile_missing=compile_missing)
        if loaded is not None:
            _LOADED[family] = loaded
        return loaded
    base = base_family(family)
    description = DESCRIPTION[base] + (" (any prior family)" if family.endswith(ANY_PRIOR) else "")
    start = time.perf_counter()
    key = engine_key(family)
    keys, record_dtype = _layout(family)
    try:
        logp, expand = _callbacks(family, key, keys, record_dtype, inner=None)
        compiled_now = False
    except Exception:  # not in the disk cache (no index, or typing the stand-in failed): compile it
        if not compile_missing:
            return None
        if progress:
            print(
                f"pymlsem: compiling the {description} engine for this machine, once "
                f"(~{expected_seconds(family)} s; later fits of any {description} start at once)",
                file=sys.stderr,
                flush=True,
            )
        # at the process's LLVM optimisation level (pymlsem.compile_level)
        logp_inner, expand_inner = _inner_functions(family)
        logp, expand = _callbacks(family, key, keys, record_dtype, inner=(logp_inner, expand_inner))
        compiled_now = True
    loaded = CompiledFamily(
        family, logp, expand, record_dtype, keys, time.perf_counter() - start, compiled_now
    )
    _LOADED[family] = loaded
    return loaded


def _layout(family: str) -> tuple[tuple[str, ...], np.dtype]:
    """User-data keys and record type of a family (nutpie's layout: data pointers, sizes, shapes)."""
    inputs = family_inputs(family)
    keys = tuple(f"d{i}" for i in range(len(inputs)))
    record_dtype = np.dtype(
        [
            (
                "shared",
                [
                    ("data", [(key, np.uintp) for key in keys]),
                    ("size", [(key, np.uintp) for key in keys]),
                    (
                        "shape",
                        [(key, np.uint, (ndim,)) for key, (_, _, ndim) in zip(keys, inputs, strict=True)],
                    ),
                ],
            )
        ]
    )
    return keys, record_dtype


def _inner_functions(family: str) -> tuple[Any, Any]:
    """The family's two inner functions, (logp, grad) and the expanded values: its hand-written kernels
    where the family module has them (``KERNELS``), else its graph compiled by PyTensor's numba backend."""
    import pytensor
    from pymc.pytensorf import compile as pymc_compile

    module = MODULES[family]
    kernels = getattr(module, "KERNELS", {})
    if family in kernels:  # written by hand: one numba function each, tested against the graph
        return kernels[family]
    x, inputs, logp, expanded = module.family_graph(family)
    grad = pytensor.grad(logp, x)
    # rewrites a family's graph must do without (see the family module's COMPILE_EXCLUDING)
    mode = compile_mode("NUMBA").excluding(*getattr(module, "COMPILE_EXCLUDING", ()))
    # a family may leave an input unused (a Poisson GLMM its trials)
    logp_fn = pymc_compile([x, *inputs], [logp, grad], mode=mode, on_unused_input="ignore")
    expand_fn = pymc_compile([x, *inputs], [expanded], mode=mode, on_unused_input="ignore")
    return logp_fn.vm.jit_fn, expand_fn.vm.jit_fn


def _callbacks(family, key, keys, record_dtype, inner) -> tuple[Any, Any]:
    """Define both callbacks from their fixed source; numba loads them from its cache under ``key``.

    With ``inner=None`` they can only be loaded (the inner functions are linked into the cached machine
    code): a cache miss then fails while typing, which :func:`load_family` takes as "compile it".
    """
    import numba
    from nutpie.compile_pymc import address_as_void_pointer
    from pytensor.link.numba.cache import compile_numba_function_src

    inputs = family_inputs(family)
    ndims = [ndim for _, _, ndim in inputs]
    dtypes = {f"dtype{i}": np.dtype(dtype) for i, (_, dtype, _) in enumerate(inputs)}
    logp_sig, expand_sig = callback_signatures()
    made = []
    for template, name, sig, part in (
        (LOGP_TEMPLATE, "logp_numba", logp_sig, 0),
        (EXPAND_TEMPLATE, "expand_numba", expand_sig, 1),
    ):
        function = None if inner is None else inner[part]
        namespace = {
            "__name__": __name__,
            "numba": numba,
            "np": np,
            "inner": function,
            "record_dtype": record_dtype,
            "void_pointer": address_as_void_pointer,
            **dtypes,
        }
        source = wrapper_source(template, list(keys), ndims)
        callback = compile_numba_function_src(source, name, global_env=namespace, cache_key=f"{key}_{name}")
        callback.__module__ = __name__
        if function is None and not _maybe_cached(callback):
            raise NotCompiledError(f"the {family} engine is not in the disk cache")
        if function is not None:
            compile_inner(function, [(dtype, ndim) for _, dtype, ndim in inputs])
        made.append(numba.cfunc(sig, cache=True)(callback))
    return made[0], made[1]


class NotCompiledError(LookupError):
    """A family's callbacks are not in numba's disk cache (compile them)."""


def _maybe_cached(callback: Any) -> bool:
    """False when numba's disk cache certainly lacks ``callback`` (no index file under its key): loading it
    would fail only after typing the callback's source (1-3 s per family, which a warm-up with empty caches
    paid for every family before compiling any); True when it may hold it (loading it then decides)."""
    from numba.core.caching import FunctionCache

    index = getattr(getattr(FunctionCache(callback), "_cache_file", None), "_index_path", None)
    return index is None or Path(index).exists()


def family_inputs(family: str) -> tuple[tuple[str, str, int], ...]:
    """(name, dtype, ndim) of a family's data inputs, in the compiled function's argument order."""
    return MODULES[family].family_inputs(family)
