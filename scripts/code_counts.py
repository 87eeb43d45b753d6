"""Counts of the package's structure that the "one house" rules keep at zero, read from its source.

* function-local imports of pymlsem modules (imports run one way, at module level);
* imports of private names (``_name``) across modules, in the package and from the tests;
* switches on the kind of model or fit (``isinstance`` with a SEM/mixed class, ``is_sem``-style helpers)
  in the workflow, plots and reports (``pymlsem/workflow``, ``pymlsem/plots``, ``pymlsem/results``);
* public names in ``pymlsem.__all__``;
* cases of the bad-input catalogue (``tests/test_bad_input_catalogue.py``).

Run:  .venv/bin/python scripts/code_counts.py        (prints one line per count, then the offending lines)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pymlsem"
#: classes whose isinstance checks switch on the kind of model or fit
MODEL_KINDS = {"SEM", "SEMFit", "MixedModel", "BuiltMixedModel", "MixedFit", "GLMMFit", "GLMMModel"}
#: helpers that do the same
KIND_HELPERS = {"is_sem", "_is_sem", "is_sem_fit", "is_mixed", "is_mixed_fit"}
SWITCH_FOLDERS = ("workflow", "plots", "results")


def _module_of(node: ast.ImportFrom, path: Path) -> str:
    """The absolute module an ``from ... import`` reads (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)[: -node.level]
    return ".".join([*parts, *([node.module] if node.module else [])])


def _imports_pymlsem(node: ast.AST, path: Path) -> bool:
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] == "pymlsem" for alias in node.names)
    return isinstance(node, ast.ImportFrom) and _module_of(node, path).split(".")[0] == "pymlsem"


def counts() -> dict[str, list[str]]:
    """The offending source lines of each count, by count."""
    found: dict[str, list[str]] = {"local": [], "private": [], "switch": []}
    for path in sorted([*PACKAGE.rglob("*.py"), *(ROOT / "tests").rglob("*.py")]):
        in_package = path.is_relative_to(PACKAGE)
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(ROOT)
        for function in ast.walk(tree) if in_package else ():
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(function):
                    if _imports_pymlsem(node, path):
                        found["local"].append(f"{where}:{node.lineno} (in {function.name})")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and _imports_pymlsem(node, path):
                names = [alias.name for alias in node.names]
                private = [name for name in names if name.startswith("_") and not name.startswith("__")]
                if private:
                    found["private"].append(f"{where}:{node.lineno} {', '.join(private)}")
        if in_package and where.parts[1] in SWITCH_FOLDERS:
            found["switch"] += [f"{where}:{node.lineno}" for node in ast.walk(tree) if _switches(node)]
    return found


def _switches(node: ast.AST) -> bool:
    """Whether ``node`` is ``isinstance(x, <model kind>)`` or a call of a kind helper."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        return False
    if node.func.id in KIND_HELPERS:
        return True
    if node.func.id != "isinstance" or len(node.args) != 2:
        return False
    kinds = node.args[1].elts if isinstance(node.args[1], ast.Tuple) else [node.args[1]]
    return any(isinstance(kind, ast.Name) and kind.id in MODEL_KINDS for kind in kinds)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    import test_bad_input_catalogue

    import pymlsem

    found = counts()
    print(f"function-local imports of pymlsem modules: {len(found['local'])}")
    print(f"cross-module imports of private names (package and tests): {len(found['private'])}")
    print(f"switches on the model kind in workflow/, plots/, results/: {len(found['switch'])}")
    print(f"public names in pymlsem.__all__: {len(pymlsem.__all__)}")
    print(f"bad-input catalogue cases: {len(test_bad_input_catalogue.CASES)}")
    for name, lines in found.items():
        for line in lines:
            print(f"  {name}: {line}")


if __name__ == "__main__":
    main()
