"""Split point resolution: which module (and which call of it) a user's split point names.

An integer split point is a block index: the output of the model's `k`-th transformer block, found as the one
`nn.ModuleList` whose length is the configured number of layers (`bert.encoder.layer.3`, `transformer.h.3`,
`model.layers.3`, `encoder.block.3`). ALBERT shares one layer group across all its layers, so its block `k` is
the `k`-th call of that group. A string is a dotted module path, taken as given.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class SplitPoint:
    """A resolved split point: the module `path`, the call of it (`occurrence`) and the key results use.

    Attributes:
        name: the key of this split point in results (`path`, with `#k` for the `k`-th call of a shared module).
        path: the dotted module path in the model.
        occurrence: which call of the module (0 unless the module runs several times per forward pass).
        rank: the position of the module's output in the forward pass (post-order of the module tree).
    """

    name: str
    path: str
    occurrence: int
    rank: int


def n_layers(model: nn.Module) -> int | None:
    """The configured number of blocks, or None when the model has no such config."""
    config = getattr(model, "config", None)
    if config is None:
        return None
    if hasattr(config, "get_text_config"):
        config = config.get_text_config()
    return getattr(config, "num_hidden_layers", None)


def _shared_groups(model: nn.Module) -> tuple[str, int] | None:
    """ALBERT-style shared layer groups: `(path of the group list, number of groups)`, else None."""
    for path, module in model.named_modules():
        if path.endswith("albert_layer_groups") and isinstance(module, nn.ModuleList):
            return path, len(module)
    return None


def block_list_path(model: nn.Module) -> str:
    """The dotted path of the model's list of transformer blocks.

    Raises:
        ValueError: when no list, or several equally shallow lists, match the configured number of layers.
    """
    layers = n_layers(model)
    candidates = [
        path
        for path, module in model.named_modules()
        if path and isinstance(module, nn.ModuleList) and len(module) == layers
    ]
    if not candidates:
        raise ValueError(
            f"split_points: cannot find the transformer blocks of {type(model).__name__} (no module list of "
            f"{layers} blocks): pass dotted module paths such as 'encoder.layer.3' instead of integers."
        )
    depth = min(path.count(".") for path in candidates)
    shallowest = [path for path in candidates if path.count(".") == depth]
    if len(shallowest) > 1:
        raise ValueError(
            f"split_points: integer split points are ambiguous for {type(model).__name__} (block lists "
            f"{shallowest}): pass dotted module paths instead."
        )
    return shallowest[0]


def _execution_ranks(model: nn.Module) -> dict[str, int]:
    """Post-order rank of every module path: a module's output is ready after its children's."""
    ranks: dict[str, int] = {}

    def visit(prefix: str, module: nn.Module) -> None:
        for name, child in module.named_children():
            visit(f"{prefix}.{name}" if prefix else name, child)
        ranks.setdefault(prefix, len(ranks))

    visit("", model)
    return ranks


def _resolve_index(model: nn.Module, index: int) -> tuple[str, int]:
    """`(path, occurrence)` of block `index` (negative counts from the end)."""
    layers = n_layers(model)
    if layers is None:
        raise ValueError(
            f"split_points: {type(model).__name__} has no config.num_hidden_layers to resolve the integer "
            f"{index}: pass a dotted module path instead."
        )
    if not -layers <= index < layers:
        raise ValueError(
            f"split_points: block {index} is out of range, {type(model).__name__} has {layers} blocks "
            f"(use 0 to {layers - 1}, or negative indices from the end)."
        )
    index %= layers
    shared = _shared_groups(model)
    if shared is not None:
        path, n_groups = shared
        per_group = layers // n_groups
        group = min(index // per_group, n_groups - 1)
        return f"{path}.{group}", index - group * per_group
    return f"{block_list_path(model)}.{index}", 0


def resolve_split_points(model: nn.Module, split_points: int | str | list[int | str]) -> list[SplitPoint]:
    """Resolves the user's split points, without duplicates, in the order the forward pass reaches them.

    Args:
        model: the torch model.
        split_points: a block index, a dotted module path, or a list of them.

    Raises:
        ValueError: naming `split_points`, for an unknown path, an out-of-range index or an empty list.
    """
    points = list(split_points) if isinstance(split_points, (list, tuple)) else [split_points]
    if not points:
        raise ValueError(
            "split_points is empty: pass a block index (e.g. 3) or a module path, or a list of them."
        )
    ranks = _execution_ranks(model)
    resolved: dict[str, SplitPoint] = {}
    for point in points:
        if isinstance(point, bool) or not isinstance(point, (int, str)):
            raise TypeError(f"split_points: expected block indices or module paths, got {point!r}.")
        if isinstance(point, int):
            path, occurrence = _resolve_index(model, point)
        else:
            path, occurrence = point, 0
            if not path or path not in ranks:
                close = [name for name in ranks if name and name.endswith(path.split(".")[-1])][:5]
                raise ValueError(
                    f"split_points: {point!r} is not a module of {type(model).__name__}"
                    + (f"; similar paths: {close}" if close else "")
                    + ". Pass a path from model.named_modules() or a block index."
                )
        name = path if occurrence == 0 else f"{path}#{occurrence}"
        resolved[name] = SplitPoint(name=name, path=path, occurrence=occurrence, rank=ranks[path])
    return sorted(resolved.values(), key=lambda point: (point.rank, point.occurrence))
