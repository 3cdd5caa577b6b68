"""Granularity lives in `interpreto.model.granularity` (shared by attribution, concepts and evaluation); this
path is kept for existing imports."""

from interpreto.model.granularity import Elements, Granularity, group_tokens

__all__ = ["Elements", "Granularity", "group_tokens"]
