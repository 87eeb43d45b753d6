"""lavaan/blavaan-style printout of a fitted SEM."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

SECTIONS = (
    ("Latent Variables", lambda r: r.op == "=~"),
    ("Regressions", lambda r: r.op == "~"),
    ("Covariances", lambda r: r.op == "~~" and r.lhs != r.rhs),
    ("Intercepts", lambda r: r.op == "~1"),
    ("Variances", lambda r: r.op == "~~" and r.lhs == r.rhs),
)
_GROUPED = {"=~", "~", "~~"}
LEVEL_NAMES = {1: "within", 2: "between"}


def format_header(items: Sequence[tuple[str, object]], title: str) -> list[str]:
    """Aligned ``name  value`` lines under a title, as lavaan prints its header."""
    lines = [title, ""]
    for name, value in items:
        if name == "":
            lines.append("")
            continue
        lines.append(f"  {name:<44}{value!s:>14}")
    return lines


def format_estimates(estimates: pd.DataFrame, n_levels: int, interval: tuple[str, str]) -> list[str]:
    """The parameter sections of the summary, per level, then the defined parameters."""
    lines = ["Parameter Estimates:", ""]
    columns = f"{'Estimate':>9}{'Post.SD':>9}{'pi.lower':>9}{'pi.upper':>9}{'Rhat':>7}{'ESS':>7}   Prior"
    estimates = estimates.rename(columns={interval[0]: "pi_lower", interval[1]: "pi_upper"})
    params = estimates[estimates.op != ":="]
    for level in range(1, n_levels + 1):
        block = params[params.level == level]
        if n_levels == 2:
            lines += [f"Level {level} [{LEVEL_NAMES[level]}]:", ""]
        for title, keep in SECTIONS:
            rows = [r for r in block.itertuples(index=False) if keep(r)]
            if not rows:
                continue
            lines.append(f"{title + ':':<20}{columns}")
            current = None
            for r in rows:
                if r.op in _GROUPED and r.op == "~~" and r.lhs == r.rhs:
                    name = r.lhs
                elif r.op in _GROUPED:
                    if (r.lhs, r.op) != current:
                        lines.append(f"  {r.lhs} {r.op}")
                        current = (r.lhs, r.op)
                    name = "  " + r.rhs
                else:
                    name = r.lhs
                lines.append(_row_line(name, r))
            lines.append("")
    defined = estimates[estimates.op == ":="]
    if len(defined):
        lines.append(f"{'Defined Parameters:':<20}{columns}")
        for r in defined.itertuples(index=False):
            lines.append(_row_line(r.lhs, r))
        lines.append("")
    return lines


def _row_line(name: str, row) -> str:
    label = f" ({row.label})" if getattr(row, "label", "") else ""
    text = f"    {name}{label}"
    text = f"{text:<20}"
    if not row.free and row.op != ":=":
        return f"{text}{row.mean:9.3f}"
    return (
        f"{text}{row.mean:9.3f}{row.sd:9.3f}{row.pi_lower:9.3f}{row.pi_upper:9.3f}"
        f"{_fmt(row.r_hat, '7.3f')}{_fmt(row.ess_bulk, '7.0f')}   {row.prior}"
    )


def _fmt(value: float, spec: str) -> str:
    width = int(spec.split(".")[0])
    return (
        f"{'':>{width}}"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:{spec}}"
    )
