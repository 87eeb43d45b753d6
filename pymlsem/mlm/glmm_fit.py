"""The fit of a non-Gaussian mixed model: as :class:`~pymlsem.mlm.fit.MixedFit`, without a residual SD."""

from __future__ import annotations

from pymlsem.mlm.fit import MixedFit

__all__ = ["GLMMFit"]


class GLMMFit(MixedFit):
    """A fitted generalised linear mixed model (``family`` other than ``"gaussian"``).

    ``fixef()`` is on the link scale. ``varcorr()`` has no ``Residual`` row (the posterior has no
    ``sigma``), as lme4's ``glmer``; the negative binomial size is in the posterior as ``theta`` and
    ordinal cut-points as ``cutpoints``.
    """

    @property
    def family(self) -> str:
        """The response family."""
        return self.spec.family
