"""Tolerances that follow from the magnitudes compared, so that the suite passes on any CPU and thread count.

Float32 round-off grows with the numbers that are added up, not with the result: a sum over terms near 50 is
off by about 50 * 2^-24 per term whatever the sum is, and by which amount depends on the CPU's kernels and the
thread count. A bare `atol=1e-5` checks noise where the terms are large and nothing where they are tiny. Here
the allowed error is `fraction * scale`: by default the largest magnitude compared; for a residual (a
convergence delta, a completeness gap) pass the magnitude of the terms whose round-off builds it, e.g. the sum
of |attributions| or |f(x) - f(b)|. Default fraction 1e-4: float32 sums over tens of terms.
"""

from __future__ import annotations

import numpy as np
import torch


def _tensor(value) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double()
    return torch.as_tensor(np.asarray(value, dtype=np.float64))


def magnitude(*values) -> float:
    """The largest finite |entry| over `values` (tensors, arrays, lists or numbers); 0.0 if there is none."""
    finite = [t[torch.isfinite(t)] for t in map(_tensor, values)]
    return max((float(t.abs().max()) for t in finite if t.numel()), default=0.0)


def assert_close_to_scale(
    actual, expected, *, scale=None, fraction: float = 1e-4, equal_nan: bool = False, msg: object = ""
) -> None:
    """Assert `|actual - expected| <= fraction * scale` entry by entry (tensors, arrays, lists or numbers).

    `scale` (a number or a tensor, whose largest finite |entry| is taken) defaults to
    `magnitude(actual, expected)`; a zero scale asks for exact equality. NaN matches NaN only with `equal_nan`.
    Shapes must match, except that a side with one entry (a number) is compared with every entry of the other.
    """
    actual, expected = _tensor(actual), _tensor(expected)
    if actual.numel() == 1 or expected.numel() == 1:
        one_entry = [t.reshape(()) if t.numel() == 1 else t for t in (actual, expected)]
        actual, expected = torch.broadcast_tensors(*one_entry)
    scale = magnitude(actual, expected) if scale is None else magnitude(scale)
    atol = fraction * scale
    torch.testing.assert_close(
        actual,
        expected,
        atol=atol,
        rtol=0,
        equal_nan=equal_nan,
        msg=lambda message: (
            f"{msg}\n{message}\nAllowed: {fraction:g} x scale {scale:.6g} = {atol:.3g}".lstrip()
        ),
    )
