"""lavaan model syntax: tokens with positions, statements, :class:`ParsedModel`."""

from pymlsem.syntax.model import Modifier, ParsedModel, Statement
from pymlsem.syntax.parser import parse_model

__all__ = ["Modifier", "ParsedModel", "Statement", "parse_model"]
