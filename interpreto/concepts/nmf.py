"""Non-negative matrix factorizations as concepts: NMF, semi-NMF and convex NMF, on overcomplete's solvers.

All three write the activations as `A ~ Z D` with non-negative codes `Z >= 0`; they differ in the dictionary
`D`: non-negative (NMF, for non-negative activations), signed (semi-NMF) or convex combinations of activation
rows (convex NMF). Fitting runs overcomplete's solvers (`overcomplete.optimization.NMF`, `SemiNMF`,
`ConvexNMF`) on all rows at once: these methods are in memory only (a shard folder is gathered under
`max_bytes=`). After `fit` an explainer is its dictionary alone (plus NMF's shift): `encode` solves the
non-negative least squares problem `min_{z >= 0} ||a - z D||^2 (+ the L1 penalty)` for each row with the
dictionary fixed, by a fixed number of hierarchical alternating least squares sweeps from the clamped least
squares solution (deterministic: no random start, unlike overcomplete's `encode`), and `decode(z) = z D`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch

from interpreto.concepts._overcomplete import import_overcomplete
from interpreto.concepts.base import ConceptExplainer
from interpreto.concepts.data import DEFAULT_MAX_BYTES, ActivationData, ActivationSource
from interpreto.model.split_points import ModelWithSplitPoints

NON_NEGATIVE_MODES = ("raise", "shift", "relu")
# a sweep changing no code by more than this fraction of the largest code ends the encoding early
_ENCODE_TOL = 1e-7


class _NonNegativeCodes(ConceptExplainer):
    """The shared part: fit on all rows, non-negative least squares codes, `decode(z) = z D`."""

    _solvers: tuple[str, ...] = ()

    def fit(
        self,
        activations: ActivationSource,
        seed: int = 0,
        progress: bool = True,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
    ) -> _NonNegativeCodes:
        """Learns the dictionary on every row of `activations` (in memory).

        Args:
            activations: see `ConceptExplainer.fit`; a shard folder is read into memory.
            seed: seeds the solver's random start (torch's generator, forked so the caller's is untouched).
            progress: show the solver's tqdm bar.
            max_bytes: the most bytes of shards gathered into memory; above it a `MemoryError` names the size.
        """
        return super().fit(activations, seed=seed, progress=progress, max_bytes=max_bytes)

    def _fit(self, data: ActivationData, seed: int = 0, progress: bool = True, max_bytes=DEFAULT_MAX_BYTES):
        if self.solver not in self._solvers:
            raise ValueError(f"solver={self.solver!r}: {type(self).__name__} knows {list(self._solvers)}.")
        rows = data.tensor(max_bytes=max_bytes, method=type(self).__name__).to(self.compute_device)
        rows = self._prepare(rows, fitting=True)
        if self.nb_concepts > rows.shape[0]:
            raise ValueError(f"nb_concepts={self.nb_concepts} exceeds the {rows.shape[0]} rows to fit on.")
        with _seeded(seed, self.compute_device):
            dictionary = self._learn(rows, seed, progress)
        self.dictionary_ = dictionary.float().to(self.compute_device)
        dead = int((self.dictionary_.abs().sum(dim=1) == 0).sum())
        if dead:
            warnings.warn(
                f"{type(self).__name__}: {dead} of {self.nb_concepts} concepts have a zero dictionary row "
                f"(dead): try another solver= or seed=, or fewer concepts.",
                stacklevel=3,
            )

    def _learn(self, rows: torch.Tensor, seed: int, progress: bool) -> torch.Tensor:
        raise NotImplementedError

    def _prepare(self, rows: torch.Tensor, fitting: bool = False) -> torch.Tensor:
        return rows

    def _encode(self, rows: torch.Tensor) -> torch.Tensor:
        penalty = self.l1_penalty * self.dictionary_.shape[1] / self.nb_concepts / 2
        return nonnegative_codes(self._prepare(rows), self.dictionary_, self.encode_iter, penalty)

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return codes @ self.dictionary_

    def _dictionary(self) -> torch.Tensor:
        return self.dictionary_

    def _state(self) -> dict[str, torch.Tensor]:
        return {"dictionary": self.dictionary_}

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.dictionary_ = tensors["dictionary"]


class NMFConcepts(_NonNegativeCodes):
    """Non-negative matrix factorization (Lee & Seung, 1999): `min ||A - Z D||_F^2` s.t. `Z >= 0, D >= 0`.

    For non-negative activations (after a ReLU/GELU MLP, or pooled ones): each concept is a non-negative
    direction and each activation a non-negative sum of them, so concepts are parts that add up. Fitting runs
    overcomplete's NMF solver (multiplicative updates by default) from scikit-learn's NNDSVDa start
    (`init="nndsvda"`, deterministic up to the randomized SVD seeded by `seed`; it needs `nb_concepts <=
    min(rows, hidden)`, otherwise the random start is used) or a random start (`init="random"`, seeded). In
    memory only.

    Signed activations raise a `ValueError` unless `non_negative` says what to do: `"shift"` subtracts the
    per-dimension minimum seen at fit (where it is negative; stored with the dictionary): `encode` codes
    `a - m` (values still below 0 clamped at 0), `decode(z) = z D + m`; `"relu"` codes `max(a, 0)` and
    `decode(z) = z D`.

    Args:
        model_with_split_points: the split model (see `ConceptExplainer`).
        nb_concepts: the number of concepts.
        split_point: the split point (see `ConceptExplainer`).
        solver: overcomplete's NMF solver: `"mu"` (multiplicative updates of Lee & Seung), `"hals"`
            (hierarchical ALS: faster, but a concept whose codes all reach 0 stays dead; measured on planted
            data: 2 fits in 12 lost an atom, none with `"mu"`), `"pgd"` (projected gradient) or `"anls"`
            (alternating non-negative least squares, slow).
        init: `"nndsvda"` or `"random"`.
        non_negative: `"raise"`, `"shift"` or `"relu"` (see above).
        max_iter: solver iterations at fit.
        tol: the solver's relative stopping tolerance on the codes.
        encode_iter: least squares sweeps per `encode`.
        device: where fitting and encoding run.

    Examples:
        >>> import torch
        >>> from interpreto.concepts import NMFConcepts
        >>> acts = torch.rand(40, 6, generator=torch.Generator().manual_seed(0))
        >>> nmf = NMFConcepts(None, nb_concepts=3, max_iter=100).fit(acts, progress=False)
        >>> codes = nmf.encode(acts)
        >>> bool((codes >= 0).all()), bool((nmf.dictionary >= 0).all()), nmf.decode(codes).shape
        (True, True, torch.Size([40, 6]))
    """

    _solvers = ("mu", "hals", "pgd", "anls")
    l1_penalty = 0.0

    def __init__(
        self,
        model_with_split_points: ModelWithSplitPoints | None,
        nb_concepts: int,
        split_point: int | str | None = None,
        solver: str = "mu",
        init: str = "nndsvda",
        non_negative: str = "raise",
        max_iter: int = 500,
        tol: float = 1e-4,
        encode_iter: int = 200,
        device: torch.device | str | None = None,
    ):
        super().__init__(model_with_split_points, nb_concepts, split_point=split_point, device=device)
        self.solver = solver
        self.init = init
        self.non_negative = non_negative
        self.max_iter = max_iter
        self.tol = tol
        self.encode_iter = encode_iter

    def _prepare(self, rows: torch.Tensor, fitting: bool = False) -> torch.Tensor:
        if self.non_negative not in NON_NEGATIVE_MODES:
            raise ValueError(f"non_negative={self.non_negative!r}: choose one of {list(NON_NEGATIVE_MODES)}.")
        if self.non_negative == "relu":
            return rows.clamp_min(0)
        if self.non_negative == "shift":
            if fitting:
                self.shift_ = rows.min(dim=0).values.clamp_max(0)
            return (rows - self.shift_).clamp_min(0)
        if (rows < 0).any():
            raise ValueError(
                f"NMFConcepts needs non-negative activations, but {int((rows < 0).sum())} values are "
                f"negative (min {float(rows.min()):.4g}): pass non_negative='shift' (subtract the "
                f"per-dimension minimum) or non_negative='relu' (clamp at 0), or use SemiNMFConcepts / "
                f"ConvexNMFConcepts, which take signed activations."
            )
        return rows

    def _learn(self, rows: torch.Tensor, seed: int, progress: bool) -> torch.Tensor:
        import_overcomplete()
        from overcomplete.optimization import NMF
        from sklearn.decomposition._nmf import _initialize_nmf

        if self.init not in ("nndsvda", "random"):
            raise ValueError(f"init={self.init!r}: choose 'nndsvda' or 'random'.")
        init = self.init if self.nb_concepts <= min(rows.shape) else "random"
        codes, dictionary = _initialize_nmf(
            rows.cpu().numpy(), self.nb_concepts, init=init, random_state=seed
        )
        solver = NMF(self.nb_concepts, device=str(self.compute_device), solver=self.solver, tol=self.tol)
        _, dictionary = solver.solver_fn(
            rows,
            torch.as_tensor(codes, device=rows.device),
            torch.as_tensor(dictionary, device=rows.device),
            max_iter=self.max_iter,
            tol=self.tol,
            verbose=progress,
        )
        return dictionary

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        decoded = codes @ self.dictionary_
        return decoded + self.shift_ if self.non_negative == "shift" else decoded

    def _state(self) -> dict[str, torch.Tensor]:
        state = {"dictionary": self.dictionary_}
        return state | {"shift": self.shift_} if self.non_negative == "shift" else state

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.dictionary_ = tensors["dictionary"]
        if "shift" in tensors:
            self.shift_ = tensors["shift"]


class SemiNMFConcepts(_NonNegativeCodes):
    """Semi-NMF (Ding, Li & Jordan, 2010): `min ||A - Z D||_F^2` s.t. `Z >= 0`, `D` signed.

    Takes signed activations (a residual stream): concepts are signed directions, each activation a
    non-negative combination of them. Fitting runs overcomplete's `SemiNMF` (multiplicative updates of the
    codes and the closed-form least squares dictionary; or projected gradient with an L1 penalty on the codes)
    from a random non-negative start seeded by `seed`. In memory only.

    Args:
        model_with_split_points: the split model (see `ConceptExplainer`).
        nb_concepts: the number of concepts.
        split_point: the split point (see `ConceptExplainer`).
        solver: `"mu"` (multiplicative updates) or `"pgd"` (projected gradient, Adam).
        max_iter: solver iterations at fit.
        tol: the solver's relative stopping tolerance on the codes.
        l1_penalty: weight of `mean|Z|` added to the mean squared error (`"pgd"` only at fit; `encode` uses
            it).
        encode_iter: least squares sweeps per `encode`.
        device: where fitting and encoding run.

    Examples:
        >>> import torch
        >>> from interpreto.concepts import SemiNMFConcepts
        >>> acts = torch.randn(40, 6, generator=torch.Generator().manual_seed(0))
        >>> semi = SemiNMFConcepts(None, nb_concepts=3, max_iter=100).fit(acts, progress=False)
        >>> bool((semi.encode(acts) >= 0).all()), bool((semi.dictionary < 0).any())
        (True, True)
    """

    _solvers = ("mu", "pgd")

    def __init__(
        self,
        model_with_split_points: ModelWithSplitPoints | None,
        nb_concepts: int,
        split_point: int | str | None = None,
        solver: str = "mu",
        max_iter: int = 500,
        tol: float = 1e-4,
        l1_penalty: float = 0.0,
        encode_iter: int = 200,
        device: torch.device | str | None = None,
    ):
        super().__init__(model_with_split_points, nb_concepts, split_point=split_point, device=device)
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.l1_penalty = l1_penalty
        self.encode_iter = encode_iter

    def _learn(self, rows: torch.Tensor, seed: int, progress: bool) -> torch.Tensor:
        import_overcomplete()
        from overcomplete.optimization import SemiNMF

        solver = SemiNMF(
            self.nb_concepts,
            solver=self.solver,
            device=str(self.compute_device),
            tol=self.tol,
            l1_penalty=self.l1_penalty,
            verbose=progress,
        )
        _, dictionary = solver.fit(rows, max_iter=self.max_iter)
        return dictionary


class ConvexNMFConcepts(_NonNegativeCodes):
    """Convex NMF (Ding, Li & Jordan, 2010): `min ||A - Z W A||_F^2` s.t. `Z >= 0, W >= 0`, so `D = W A`.

    Takes signed activations; every concept is a weighted average of activation rows (after fit the rows of
    `W` are rescaled to sum to 1, the codes taking the scale), so a concept lies inside the data's range and
    reads as a prototype. Fitting runs overcomplete's `ConvexNMF` from a random start seeded by `seed`; `W`
    has one column per row, and the `"mu"` solver forms the `(rows, rows)` Gram matrix: in memory only, for up
    to tens of thousands of rows. Only the dictionary `D` is kept.

    Args:
        model_with_split_points: the split model (see `ConceptExplainer`).
        nb_concepts: the number of concepts.
        split_point: the split point (see `ConceptExplainer`).
        solver: `"pgd"` (projected gradient, Adam) or `"mu"` (multiplicative updates of Ding et al.).
        strict_convex: renormalize the rows of `W` to sum to 1 at every step of the solver.
        max_iter: solver iterations at fit.
        tol: the solver's relative stopping tolerance on the codes.
        l1_penalty: weight of `mean|Z|` added to the mean squared error (`"pgd"` only at fit; `encode` uses
            it).
        encode_iter: least squares sweeps per `encode`.
        device: where fitting and encoding run.

    Examples:
        >>> import torch
        >>> from interpreto.concepts import ConvexNMFConcepts
        >>> acts = torch.randn(40, 6, generator=torch.Generator().manual_seed(0))
        >>> convex = ConvexNMFConcepts(None, nb_concepts=3, max_iter=100).fit(acts, progress=False)
        >>> inside = (convex.dictionary >= acts.min(0).values) & (convex.dictionary <= acts.max(0).values)
        >>> bool(inside.all()), bool((convex.encode(acts) >= 0).all())
        (True, True)
    """

    _solvers = ("pgd", "mu")

    def __init__(
        self,
        model_with_split_points: ModelWithSplitPoints | None,
        nb_concepts: int,
        split_point: int | str | None = None,
        solver: str = "pgd",
        strict_convex: bool = False,
        max_iter: int = 500,
        tol: float = 1e-4,
        l1_penalty: float = 0.0,
        encode_iter: int = 200,
        device: torch.device | str | None = None,
    ):
        super().__init__(model_with_split_points, nb_concepts, split_point=split_point, device=device)
        self.solver = solver
        self.strict_convex = strict_convex
        self.max_iter = max_iter
        self.tol = tol
        self.l1_penalty = l1_penalty
        self.encode_iter = encode_iter

    def _learn(self, rows: torch.Tensor, seed: int, progress: bool) -> torch.Tensor:
        import_overcomplete()
        from overcomplete.optimization import ConvexNMF

        solver = ConvexNMF(
            self.nb_concepts,
            device=str(self.compute_device),
            tol=self.tol,
            strict_convex=self.strict_convex,
            solver=self.solver,
            verbose=progress,
            l1_penalty=self.l1_penalty,
        )
        solver.fit(rows, max_iter=self.max_iter)
        weights = solver.W / solver.W.sum(dim=1, keepdim=True).clamp_min(torch.finfo(rows.dtype).tiny)
        return weights @ rows


def nonnegative_codes(
    rows: torch.Tensor, dictionary: torch.Tensor, n_sweeps: int, penalty: float = 0.0
) -> torch.Tensor:
    """`argmin_{Z >= 0} ||rows - Z D||^2 + 2 penalty sum(Z)` by hierarchical alternating least squares.

    Starts from the least squares codes clamped at 0 and updates one concept column at a time in closed form
    (`z_k <- max(0, z_k + (r D_k^T - penalty) / ||D_k||^2)`, Cichocki et al. 2007), `n_sweeps` times or until
    a sweep changes no code by more than 1e-7 of the largest code; no randomness.
    """
    gram = dictionary @ dictionary.T
    cross = rows @ dictionary.T
    codes = (cross @ torch.linalg.pinv(gram)).clamp_min(0)
    diagonal = gram.diagonal().clamp_min(torch.finfo(gram.dtype).tiny)
    for _ in range(n_sweeps):
        previous = codes.clone()
        for k in range(codes.shape[1]):
            step = (cross[:, k] - penalty - codes @ gram[:, k]) / diagonal[k]
            codes[:, k] = (codes[:, k] + step).clamp_min(0)
        if (codes - previous).abs().max() <= _ENCODE_TOL * codes.abs().max():
            break
    return codes


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seeds torch's global generators (overcomplete's starts draw from them), restored afterwards."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
