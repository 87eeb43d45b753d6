"""Data checks and sufficient statistics per level."""

from pymlsem.data.stats import (
    SingleLevelStats,
    TwoLevelStats,
    single_level_stats,
    stats_from_summary,
    two_level_stats,
)

__all__ = [
    "SingleLevelStats",
    "TwoLevelStats",
    "single_level_stats",
    "stats_from_summary",
    "two_level_stats",
]
