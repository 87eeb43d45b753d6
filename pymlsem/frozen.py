"""Model specifications that do not change once made (as a frozen dataclass, for classes with a constructor
that does more than store its arguments)."""

from __future__ import annotations

import copy
from dataclasses import FrozenInstanceError
from typing import Any, Self

__all__ = ["FrozenSpec"]


class FrozenSpec:
    """A specification whose attributes are set while it is made and never after.

    The constructor sets attributes as usual and ends with :meth:`freeze`; from then on setting or deleting
    an attribute raises :class:`dataclasses.FrozenInstanceError` (an ``AttributeError``). A variant is a new
    object (:meth:`replaced`), so a fit, a refit or a cache that holds a spec never sees it change.
    """

    def freeze(self) -> None:
        """Refuse every later change of an attribute (the constructor's last step)."""
        self.__dict__["_frozen"] = True

    def replaced(self, **changes: Any) -> Self:
        """A frozen copy with ``changes`` to its attributes; this one is unchanged."""
        new = copy.copy(self)
        new.__dict__.update(changes)
        return new

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_frozen"):
            raise FrozenInstanceError(
                f"cannot set {name!r}: a {type(self).__name__} does not change once built; make a new one "
                "(e.g. with_priors() for other priors)"
            )
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if self.__dict__.get("_frozen"):
            raise FrozenInstanceError(f"cannot delete {name!r}: a {type(self).__name__} does not change")
        object.__delattr__(self, name)
