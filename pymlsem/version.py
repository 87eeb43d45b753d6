"""The library version (one place: the package and the results that record it read it here)."""

__version__ = "0.1.0"
