"""Arithmetic expressions of parameter labels (``:=`` definitions and ``==``/``<``/``>`` constraints).

Expressions are read with Python's :mod:`ast` and only names, numbers, ``+ - * / **`` and a few
functions are allowed, so nothing in a model string is ever executed.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping

import pytensor.tensor as pt

from pymlsem.exceptions import ModelSpecificationError

FUNCTIONS: dict[str, Callable] = {
    "exp": pt.exp,
    "log": pt.log,
    "sqrt": pt.sqrt,
    "abs": pt.abs,
    "tanh": pt.tanh,
    "pow": pt.pow,
}
_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}


def names_in(expression: str) -> list[str]:
    """The parameter names an expression refers to, in order of appearance."""
    tree = ast.parse(expression, mode="eval")
    functions = {
        n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    seen: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in functions and node.id not in seen:
            seen.append(node.id)
    return seen


def evaluate(expression: str, names: Mapping[str, pt.TensorVariable | float]) -> pt.TensorVariable:
    """Evaluate ``expression`` with ``names`` bound to PyTensor expressions.

    Raises
    ------
    ModelSpecificationError
        When the expression uses a name that is not a label or defined parameter of the model, or a
        construct that is not plain arithmetic.
    """

    def walk(node: ast.AST) -> pt.TensorVariable | float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in names:
                known = ", ".join(sorted(names)) or "none"
                raise ModelSpecificationError(
                    f"{expression!r} uses {node.id!r}, which is not a label of the model "
                    f"(labels and defined parameters: {known}); label the parameter, e.g. {node.id}*x"
                )
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS:
            return FUNCTIONS[node.func.id](*(walk(a) for a in node.args))
        raise ModelSpecificationError(
            f"{expression!r} is not plain arithmetic of labels; use + - * / ** and {', '.join(FUNCTIONS)}"
        )

    return walk(ast.parse(expression, mode="eval"))
