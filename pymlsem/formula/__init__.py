"""lme4 formulas: the fixed part and the ``(expr | group)`` blocks, on top of the ``formulae`` package."""

from pymlsem.formula.design import MixedDesign, RandomBlock, lme4_name, mixed_design
from pymlsem.formula.split import BarTerm, SplitFormula, split_formula

__all__ = [
    "BarTerm",
    "MixedDesign",
    "RandomBlock",
    "SplitFormula",
    "lme4_name",
    "mixed_design",
    "split_formula",
]
