"""nnsight plumbing: wrap a model for one call without leaving anything on it, read and replace module outputs.

`nnsight.NNsight(model)` installs a controller `forward` (and its state) in the `__dict__` of every module it
wraps and leaves them there; `wrapped` takes them out again so the user's model is as it was.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import nnsight
import torch


def first_tensor(output: Any) -> torch.Tensor:
    """The hidden states in a module's output (a tensor, or the first item of a tuple / model output)."""
    return output if isinstance(output, torch.Tensor) else output[0]


def replace_first(output: Any, hidden: torch.Tensor) -> Any:
    """`output` with its hidden states replaced by `hidden`, in the same structure."""
    if isinstance(output, torch.Tensor):
        return hidden
    if isinstance(output, tuple):
        return (hidden, *output[1:])
    output[next(iter(output.keys()))] = hidden  # a ModelOutput: its first field
    return output


def module_output(tracer: Any, envoy: Any, occurrence: int) -> Any:
    """The envoy's output at its `occurrence`-th call, read inside a trace."""
    if occurrence == 0:
        return envoy.output
    value = None
    for _ in tracer.iter[occurrence]:
        value = envoy.output
    return value


@contextmanager
def wrapped(model: torch.nn.Module) -> Iterator[nnsight.NNsight]:
    """An `nnsight.NNsight` wrapper of `model`, whose per-module controllers are removed on exit."""
    # nnsight stores a controller `forward` and its state in each module's __dict__, permanently
    before = {module: dict(module.__dict__) for module in model.modules()}
    try:
        with warnings.catch_warnings():
            # "has a submodule named 'output'": nnsight renames BERT's `output` submodules, which we never use
            warnings.simplefilter("ignore", UserWarning)
            wrapper = nnsight.NNsight(model)
        yield wrapper
    finally:
        for module, attributes in before.items():
            for name in ("forward", "__nnsight__"):
                if name in attributes:
                    module.__dict__[name] = attributes[name]
                else:
                    module.__dict__.pop(name, None)
