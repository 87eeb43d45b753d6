"""The families' disk-cache key follows the code of their graph sources, not its docstrings or comments;
families that share a kernel are compiled once."""

from __future__ import annotations

import numba

from pymlsem import __main__ as command_line
from pymlsem.compile_level import COMPILE_OPT_LEVEL, use_compile_level
from pymlsem.engine import compiled as compiled_module
from pymlsem.engine import glmm, mixed, sem
from pymlsem.engine import warmup as warmup_module
from pymlsem.engine.compiled import code_fingerprint, engine_key, shared_family
from pymlsem.engine.families import COMPILE_AFTER
from pymlsem.workflow import incomplete
from pymlsem.workflow.incomplete import compile_incomplete_checks
from pymlsem.workflow.pointwise import compile_model_checks

SOURCE = '''"""A module."""

def f(x):
    """Twice x."""
    return 2 * x  # doubled
'''


def test_docstrings_comments_and_layout_do_not_change_the_fingerprint() -> None:
    edited = '''"""The module, described at more length."""


def f(x):
    """Two times x (see tests/engine/test_engine.py)."""

    return 2 * x
'''
    assert code_fingerprint(edited) == code_fingerprint(SOURCE)


def test_a_change_of_code_changes_the_fingerprint() -> None:
    assert code_fingerprint(SOURCE.replace("2 * x", "3 * x")) != code_fingerprint(SOURCE)
    assert code_fingerprint(SOURCE.replace("def f(x)", "def f(x, y=0)")) != code_fingerprint(SOURCE)


def test_a_function_that_is_only_a_docstring_keeps_a_body() -> None:
    assert "Pass" in code_fingerprint('def g():\n    """Nothing."""\n')


def test_each_family_has_its_own_key() -> None:
    assert engine_key("sem1") != engine_key("sem2")
    assert engine_key("sem2").startswith("pymlsem_engine_sem2_")


def test_a_kernel_is_part_of_its_own_familys_key_only(monkeypatch) -> None:
    assert set(sem.KERNEL_SOURCES) == set(sem.KERNELS)
    before = {family: engine_key(family) for family in ("sem1", "sem2", "sem2_fiml")}
    monkeypatch.setitem(sem.KERNEL_SOURCES, "sem2", ("engine/kernels/parts.py",))
    assert engine_key("sem2") != before["sem2"]
    assert engine_key("sem1") == before["sem1"]
    assert engine_key("sem2_fiml") == before["sem2_fiml"]


def test_a_family_missing_from_the_disk_cache_is_found_missing_without_typing(monkeypatch) -> None:
    """A key with no index file in numba's cache: the warm-up's check answers without typing the callback
    (it typed each missing family's callback before, 1-3 s each with empty caches)."""
    monkeypatch.setattr(compiled_module, "_LOADED", {})
    monkeypatch.setattr(compiled_module, "engine_key", lambda family: f"pymlsem_engine_{family}_not_compiled")

    typed = []

    def cfunc(*args, **kwargs):  # numba types a callback when it makes one
        typed.append(args)
        raise TypeError("typing failed")

    monkeypatch.setattr(numba, "cfunc", cfunc)
    assert compiled_module.load_family("sem1", compile_missing=False) is None
    assert typed == []


def test_families_sharing_a_kernel_are_compiled_once(monkeypatch) -> None:
    """``mixed1_q1`` and ``mixed1_q2`` compute ``mixed1``'s log-density over its inputs: the warm-up compiles
    ``mixed1`` once for the three, and loading either of them gives ``mixed1``'s callbacks."""
    shared = {family: shared_family(family) for family in mixed.KERNELS}
    assert shared == dict.fromkeys(("mixed1_q1", "mixed1_q2", "mixed1"), "mixed1") | {
        "mixed2": "mixed2",  # nested and crossed factors: kernels of their own
        "mixed_crossed": "mixed_crossed",
    }
    assert {shared_family(family) for family in glmm.KERNELS} == {"glmm_binomial_logit"}
    assert shared_family("sem2") == "sem2"
    compiled = []
    monkeypatch.setattr(warmup_module, "load_family", lambda family, compile_missing: None)
    monkeypatch.setattr(warmup_module, "compile_family", lambda family: compiled.append(family) or family)
    warmup_module.warmup(["mixed1_q1", "mixed1_q2", "mixed1", "sem2"])
    assert sorted(compiled) == ["mixed1", "sem2"]
    stand_in = object()
    # a loaded family of this test's own: loading mixed1_q1 stores it under that name too, and another
    # test in this process must not get the stand-in
    monkeypatch.setattr(compiled_module, "_LOADED", {"mixed1": stand_in})
    assert compiled_module.load_family("mixed1_q1") is stand_in


def test_warmup_compiles_a_latent_family_after_the_one_whose_code_it_reuses() -> None:
    """PyTensor's numba backend caches each operation's function on disk, so ``latent2`` compiles faster
    after ``latent1`` than alongside it: the warm-up starts it once ``latent1`` is compiled, and the other
    families slowest first."""
    families = ["sem1", "latent2_logit", "mixed2", "latent2", "latent1_logit", "latent1"]
    order = warmup_module.compile_order(families)
    assert sorted(order) == sorted(families)
    for family, first in COMPILE_AFTER.items():
        if family in families:
            assert order.index(first) < order.index(family)
    assert order[0] == "latent1"  # latent2 is slower but waits for it
    assert order.index("mixed2") < order.index("sem1")  # the slower first


def test_the_warmup_command_also_compiles_the_post_fit_checks(monkeypatch) -> None:
    """``python -m pymlsem warmup`` compiles the post-fit checks' densities beside the families, those of
    incomplete data included, so that a first PPP or LOO does not compile them."""
    calls = {}
    monkeypatch.setattr(command_line, "warmup", lambda families, jobs, also: calls.update(also=also))
    assert command_line.main(["warmup", "sem1"]) == 0
    assert calls["also"] == (compile_model_checks, compile_incomplete_checks)
    # the incomplete-data step compiles both kernels (loaded from the disk cache after the warm-up)
    assert "incomplete data ready" in compile_incomplete_checks()
    assert incomplete.pattern_loglik_draws.signatures
    assert incomplete.two_level_loglik_draws.signatures


def test_numba_compiles_at_level_one_unless_the_environment_says_otherwise(monkeypatch) -> None:
    """Importing pymlsem sets numba's LLVM optimisation level to 1 (pymlsem.compile_level); a level the
    environment sets (``NUMBA_OPT``) is kept."""
    level = type(numba.config.OPT)
    monkeypatch.delenv("NUMBA_OPT", raising=False)
    monkeypatch.setattr(numba.config, "OPT", level(3))
    use_compile_level()
    assert numba.config.OPT == COMPILE_OPT_LEVEL == 1
    monkeypatch.setenv("NUMBA_OPT", "2")  # nothing compiles before monkeypatch restores the environment
    monkeypatch.setattr(numba.config, "OPT", level(2))
    use_compile_level()
    assert numba.config.OPT == 2
