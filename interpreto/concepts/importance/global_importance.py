"""Global concept importance: concept attributions averaged over a dataset, per class or target, for ranking."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from interpreto.attribution.output import AttributionOutput


@dataclass
class GlobalConceptImportance:
    """Concept attributions aggregated over inputs, one row per target name (class, or continuation token).

    Attributes:
        elements: the concept players (`"concept 3"`, ...), then `"reconstruction error"`.
        targets: the target names, one per row.
        mean: `(n_targets, n_elements)` mean signed attribution over the inputs explained for that target.
        mean_abs: `(n_targets, n_elements)` mean absolute attribution.
        counts: how many (input, target) attributions each row averages.
        method: the attribution method's name.
    """

    elements: list[str]
    targets: list[str]
    mean: torch.Tensor
    mean_abs: torch.Tensor
    counts: list[int]
    method: str = ""

    def ranking(
        self, target: str | int = 0, by: str = "mean_abs", k: int | None = None
    ) -> list[tuple[str, float]]:
        """Elements sorted by `by` (`"mean_abs"` or `"mean"`, descending) for one target (a name or row index)."""
        row = self._row(target)
        if by not in ("mean", "mean_abs"):
            raise ValueError(f"by={by!r} is unknown: use 'mean_abs' or 'mean'.")
        values = getattr(self, by)[row]
        order = torch.argsort(values, descending=True)[: k or len(values)]
        return [(self.elements[i], float(values[i])) for i in order]

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return {
            "elements": self.elements,
            "targets": self.targets,
            "mean": self.mean.tolist(),
            "mean_abs": self.mean_abs.tolist(),
            "counts": self.counts,
            "method": self.method,
        }

    def save(self, path: str | Path) -> Path:
        """Writes the aggregate as JSON."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    def _row(self, target: str | int) -> int:
        if isinstance(target, str):
            if target not in self.targets:
                raise ValueError(f"target={target!r} is not among the aggregated targets {self.targets}.")
            return self.targets.index(target)
        if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < len(self.targets):
            raise ValueError(
                f"target={target!r}: pass a target name or a row index below {len(self.targets)}."
            )
        return target


def global_importance(outputs: list[AttributionOutput]) -> GlobalConceptImportance:
    """Aggregates concept attributions (of `concept_attributions` at `"sample"` granularity) over inputs.

    Each output's row for a target is added to that target name's mean and mean of absolute values (NaN
    entries, elements a target cannot see, are skipped).

    Args:
        outputs: concept attributions of several inputs, all with the same elements.

    Returns:
        A `GlobalConceptImportance` with one row per target name, in order of first appearance.

    Examples:
        >>> import torch
        >>> from interpreto import AttributionOutput
        >>> outs = [AttributionOutput(text="x", elements=["concept 0", "concept 1"],
        ...     attributions=torch.tensor([[v, 1.0]]), targets=[0], target_names=["neg"],
        ...     scores=torch.zeros(1)) for v in (2.0, -4.0)]
        >>> agg = global_importance(outs)
        >>> agg.mean.tolist(), agg.mean_abs.tolist()
        ([[-1.0, 1.0]], [[3.0, 1.0]])
        >>> agg.ranking("neg")
        [('concept 0', 3.0), ('concept 1', 1.0)]
    """
    if not outputs:
        raise ValueError("outputs is empty: pass the concept attributions of at least one input.")
    elements = list(outputs[0].elements)
    sums: dict[str, list[torch.Tensor]] = {}
    for i, output in enumerate(outputs):
        if list(output.elements) != elements:
            raise ValueError(
                f"outputs[{i}] has other elements than outputs[0]: aggregate outputs of one explainer at "
                f"granularity 'sample' (the same concepts for every input)."
            )
        for name, row in zip(output.target_names, output.attributions.float(), strict=True):
            sums.setdefault(name, []).append(row)
    targets = list(sums)
    stacked = [torch.stack(sums[name]) for name in targets]
    mean = torch.stack([rows.nanmean(0) for rows in stacked])
    mean_abs = torch.stack([rows.abs().nanmean(0) for rows in stacked])
    return GlobalConceptImportance(
        elements=elements,
        targets=targets,
        mean=mean,
        mean_abs=mean_abs,
        counts=[len(sums[name]) for name in targets],
        method=outputs[0].method,
    )
