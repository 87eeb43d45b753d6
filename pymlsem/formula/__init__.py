"""lme4 formulas: the fixed part and the ``(expr | group)`` blocks, on top of the ``formulae`` package."""

from pymlsem.formula.centering import center_grand, center_within, cluster_means
from pymlsem.formula.design import MixedDesign, RandomBlock, lme4_name, mixed_design
from pymlsem.formula.split import BarTerm, SplitFormula, split_formula

__all__ = [
    "BarTerm",
    "MixedDesign",
    "RandomBlock",
    "SplitFormula",
    "center_grand",
    "center_within",
    "cluster_means",
    "lme4_name",
    "mixed_design",
    "split_formula",
]
