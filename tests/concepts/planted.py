"""Planted-truth activations for the concept tests: rows built from a known sparse dictionary.

`planted_activations` draws `X = Z @ D + noise`; a concept method that works should recover `D`'s rows (up to
order and sign): `matched_cosine` pairs learned directions with atoms by the Hungarian algorithm on |cos|.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment


def planted_activations(
    n_rows: int, n_atoms: int, dim: int, active: int, noise: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows `X = Z @ D + noise` with a known sparse code.

    Args:
        n_rows: number of rows.
        n_atoms: number of dictionary atoms (rows of `D`).
        dim: the dimension of a row.
        active: atoms active in each row (exactly this many, chosen uniformly without replacement).
        noise: the standard deviation of the Gaussian noise added to every entry.
        seed: seeds a `torch.Generator`; the same seed gives the same tensors.

    Returns:
        `(X, Z, D)`, float32: `X` `(n_rows, dim)`; `Z` `(n_rows, n_atoms)`, non-negative, `active` non-zero
        entries per row drawn uniformly in [1, 2]; `D` `(n_atoms, dim)`, Gaussian rows scaled to unit norm.

    Examples:
        >>> X, Z, D = planted_activations(5, 8, 16, active=2, noise=0.0, seed=0)
        >>> X.shape, (Z > 0).sum(dim=1).tolist(), bool(torch.allclose(X, Z @ D))
        (torch.Size([5, 16]), [2, 2, 2, 2, 2], True)
    """
    if not 1 <= active <= n_atoms:
        raise ValueError(f"active must be in [1, n_atoms={n_atoms}], got {active}.")
    generator = torch.Generator().manual_seed(seed)
    atoms = torch.randn(n_atoms, dim, generator=generator)
    atoms /= atoms.norm(dim=1, keepdim=True)
    chosen = torch.rand(n_rows, n_atoms, generator=generator).argsort(dim=1)[:, :active]
    values = 1 + torch.rand(n_rows, active, generator=generator)
    codes = torch.zeros(n_rows, n_atoms).scatter(1, chosen, values)
    rows = codes @ atoms + noise * torch.randn(n_rows, dim, generator=generator)
    return rows, codes, atoms


def matched_cosine(learned: torch.Tensor, atoms: torch.Tensor) -> tuple[float, torch.Tensor]:
    """Mean |cos| between each atom and the learned direction the Hungarian algorithm pairs it with.

    Args:
        learned: `(n_learned, dim)` directions, `n_learned >= n_atoms`.
        atoms: `(n_atoms, dim)` true directions.

    Returns:
        `(mean |cos|, per-atom |cos| of shape (n_atoms,))`.
    """
    learned = torch.nn.functional.normalize(learned.detach().double().cpu(), dim=1)
    atoms = torch.nn.functional.normalize(atoms.detach().double().cpu(), dim=1)
    similarity = (atoms @ learned.T).abs().numpy()
    rows, cols = linear_sum_assignment(-similarity)
    matched = torch.from_numpy(np.asarray(similarity[rows, cols]))
    return float(matched.mean()), matched
