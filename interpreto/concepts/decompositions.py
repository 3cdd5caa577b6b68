"""Linear decompositions as concepts: PCA, ICA and truncated SVD, fitted with scikit-learn, run in torch.

Each is fitted by its scikit-learn estimator (`PCA` / `IncrementalPCA`, `FastICA`, `TruncatedSVD`, with
`random_state=seed`) and then kept as plain tensors: `encode` and `decode` are the estimator's `transform` and
`inverse_transform` formulas in torch, so a saved explainer needs no scikit-learn object. PCA streams a shard
folder through `IncrementalPCA`; ICA and SVD are in memory only (a shard folder is gathered under
`max_bytes=`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from interpreto.concepts.base import ConceptExplainer
from interpreto.concepts.data import DEFAULT_MAX_BYTES, ActivationData, ActivationSource
from interpreto.model.split_points import ModelWithSplitPoints


class PCAConcepts(ConceptExplainer):
    """Principal components as concepts: `z = (a - mu) C^T`, `decode(z) = z C + mu`.

    `C` `(nb_concepts, hidden)` holds the orthonormal directions of largest variance of the activations and
    `mu` their mean (not whitened, as scikit-learn's default). In memory, scikit-learn's `PCA`
    (`random_state=seed` for its randomized solver); a shard folder is streamed through `IncrementalPCA` (Ross
    et al., 2008), one minibatch at a time, so any number of rows fits. With `nb_concepts = hidden` the
    reconstruction is exact.

    Args:
        model_with_split_points: the split model (see `ConceptExplainer`).
        nb_concepts: the number of components (at most the hidden size and the number of rows).
        split_point: the split point (see `ConceptExplainer`).
        device: where encoding runs.

    Examples:
        >>> import torch
        >>> from interpreto.concepts import PCAConcepts
        >>> acts = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
        >>> pca = PCAConcepts(None, nb_concepts=4).fit(acts)
        >>> bool(torch.allclose(pca.reconstruct(acts), acts, atol=1e-5)), pca.dictionary.shape
        (True, torch.Size([4, 4]))
    """

    def __init__(
        self,
        model_with_split_points: ModelWithSplitPoints | None,
        nb_concepts: int,
        split_point: int | str | None = None,
        device: torch.device | str | None = None,
    ):
        super().__init__(model_with_split_points, nb_concepts, split_point=split_point, device=device)

    def fit(
        self, activations: ActivationSource, seed: int = 0, progress: bool = True, batch_size: int = 4096
    ) -> PCAConcepts:
        """Fits the components: `PCA` on rows in memory, `IncrementalPCA` streamed over a shard folder.

        Args:
            activations: see `ConceptExplainer.fit`.
            seed: scikit-learn's `random_state`.
            progress: show a tqdm bar over the streamed minibatches.
            batch_size: rows per `IncrementalPCA.partial_fit` (at least `nb_concepts`).
        """
        return super().fit(activations, seed=seed, progress=progress, batch_size=batch_size)

    def _fit(
        self, data: ActivationData, seed: int = 0, progress: bool = True, batch_size: int = 4096
    ) -> None:
        from sklearn.decomposition import PCA, IncrementalPCA

        _check_components(self, data, "PCAConcepts")
        if data.in_memory:
            estimator = PCA(n_components=self.nb_concepts, random_state=seed).fit(data.tensor().numpy())
        else:
            estimator = IncrementalPCA(n_components=self.nb_concepts)
            size = max(batch_size, self.nb_concepts)
            batches = regrouped(data.batches(size, torch.Generator().manual_seed(seed)), size)
            total = -(-data.n_rows // size)
            for batch in tqdm(batches, desc="IncrementalPCA", total=total, disable=not progress):
                estimator.partial_fit(batch.numpy())
        self.mean_ = _tensor(estimator.mean_, self.compute_device)
        self.components_ = _tensor(estimator.components_, self.compute_device)
        self.explained_variance_ = _tensor(estimator.explained_variance_, self.compute_device)

    def _encode(self, rows: torch.Tensor) -> torch.Tensor:
        return (rows - self.mean_) @ self.components_.T

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return codes @ self.components_ + self.mean_

    def _dictionary(self) -> torch.Tensor:
        return self.components_

    def _state(self) -> dict[str, torch.Tensor]:
        return {
            "mean": self.mean_,
            "components": self.components_,
            "explained_variance": self.explained_variance_,
        }

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.mean_, self.components_ = tensors["mean"], tensors["components"]
        self.explained_variance_ = tensors["explained_variance"]


class ICAConcepts(ConceptExplainer):
    """Independent components as concepts (FastICA, Hyvarinen & Oja, 2000): `z = (a - mu) W^T`,
    `decode(z) = z M^T + mu`.

    scikit-learn's `FastICA` (`whiten="unit-variance"`, `random_state=seed` for its random start) finds the
    unmixing `W` `(nb_concepts, hidden)` (the whitening folded in, as its `components_`) that makes the codes
    as non-Gaussian, hence as independent, as it can; `M = pinv(W)` is its `mixing_` and the dictionary is
    `M^T` (one mixing direction per concept). In memory only.

    Args:
        model_with_split_points: the split model (see `ConceptExplainer`).
        nb_concepts: the number of components (at most the hidden size and the number of rows).
        split_point: the split point (see `ConceptExplainer`).
        fun: FastICA's contrast function: `"logcosh"`, `"exp"` or `"cube"`.
        max_iter: FastICA's iterations.
        tol: FastICA's tolerance.
        device: where encoding runs.

    Examples:
        >>> import torch
        >>> from interpreto.concepts import ICAConcepts
        >>> sources = torch.rand(200, 2, generator=torch.Generator().manual_seed(0)) - 0.5
        >>> ica = ICAConcepts(None, nb_concepts=2).fit(sources @ torch.tensor([[1.0, 2.0], [1.0, -1.0]]))
        >>> ica.encode(sources @ torch.tensor([[1.0, 2.0], [1.0, -1.0]])).std(0).round(decimals=2).tolist()
        [1.0, 1.0]
    """

    def __init__(
        self,
        model_with_split_points: ModelWithSplitPoints | None,
        nb_concepts: int,
        split_point: int | str | None = None,
        fun: str = "logcosh",
        max_iter: int = 200,
        tol: float = 1e-4,
        device: torch.device | str | None = None,
    ):
        super().__init__(model_with_split_points, nb_concepts, split_point=split_point, device=device)
        self.fun = fun
        self.max_iter = max_iter
        self.tol = tol

    def fit(
        self,
        activations: ActivationSource,
        seed: int = 0,
        progress: bool = True,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
    ) -> ICAConcepts:
        """Fits FastICA on every row (in memory).

        Args:
            activations: see `ConceptExplainer.fit`; a shard folder is read into memory.
            seed: FastICA's `random_state`.
            progress: unused (FastICA has no progress bar); kept for a uniform call.
            max_bytes: the most bytes of shards gathered into memory; above it a `MemoryError` names the size.
        """
        return super().fit(activations, seed=seed, progress=progress, max_bytes=max_bytes)

    def _fit(self, data: ActivationData, seed: int = 0, progress: bool = True, max_bytes=DEFAULT_MAX_BYTES):
        from sklearn.decomposition import FastICA

        _check_components(self, data, "ICAConcepts")
        rows = data.tensor(max_bytes=max_bytes, method="ICAConcepts").numpy()
        estimator = FastICA(
            n_components=self.nb_concepts,
            fun=self.fun,
            max_iter=self.max_iter,
            tol=self.tol,
            whiten="unit-variance",
            random_state=seed,
        ).fit(rows)
        self.mean_ = _tensor(estimator.mean_, self.compute_device)
        self.components_ = _tensor(estimator.components_, self.compute_device)
        self.mixing_ = _tensor(estimator.mixing_, self.compute_device)

    def _encode(self, rows: torch.Tensor) -> torch.Tensor:
        return (rows - self.mean_) @ self.components_.T

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return codes @ self.mixing_.T + self.mean_

    def _dictionary(self) -> torch.Tensor:
        return self.mixing_.T

    def _state(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean_, "components": self.components_, "mixing": self.mixing_}

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.mean_, self.components_, self.mixing_ = tensors["mean"], tensors["components"], tensors["mixing"]


class SVDConcepts(ConceptExplainer):
    """Truncated SVD as concepts (no centering): `z = a V^T`, `decode(z) = z V`.

    `V` `(nb_concepts, hidden)` holds the top right singular vectors of the activations, from scikit-learn's
    `TruncatedSVD` (randomized SVD of Halko et al., 2011, `random_state=seed`). Unlike PCA the mean is not
    removed, so the first concept usually follows the mean activation. In memory only.

    Args:
        model_with_split_points: the split model (see `ConceptExplainer`).
        nb_concepts: the number of components (at most the hidden size and the number of rows).
        split_point: the split point (see `ConceptExplainer`).
        n_iter: power iterations of the randomized SVD.
        device: where encoding runs.

    Examples:
        >>> import torch
        >>> from interpreto.concepts import SVDConcepts
        >>> acts = torch.randn(30, 5, generator=torch.Generator().manual_seed(0))
        >>> svd = SVDConcepts(None, nb_concepts=2).fit(acts)
        >>> bool(torch.allclose(svd.dictionary @ svd.dictionary.T, torch.eye(2), atol=1e-5))
        True
    """

    def __init__(
        self,
        model_with_split_points: ModelWithSplitPoints | None,
        nb_concepts: int,
        split_point: int | str | None = None,
        n_iter: int = 5,
        device: torch.device | str | None = None,
    ):
        super().__init__(model_with_split_points, nb_concepts, split_point=split_point, device=device)
        self.n_iter = n_iter

    def fit(
        self,
        activations: ActivationSource,
        seed: int = 0,
        progress: bool = True,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
    ) -> SVDConcepts:
        """Fits the truncated SVD on every row (in memory).

        Args:
            activations: see `ConceptExplainer.fit`; a shard folder is read into memory.
            seed: the randomized SVD's `random_state`.
            progress: unused; kept for a uniform call.
            max_bytes: the most bytes of shards gathered into memory; above it a `MemoryError` names the size.
        """
        return super().fit(activations, seed=seed, progress=progress, max_bytes=max_bytes)

    def _fit(self, data: ActivationData, seed: int = 0, progress: bool = True, max_bytes=DEFAULT_MAX_BYTES):
        from sklearn.decomposition import TruncatedSVD

        _check_components(self, data, "SVDConcepts")
        rows = data.tensor(max_bytes=max_bytes, method="SVDConcepts").numpy()
        estimator = TruncatedSVD(n_components=self.nb_concepts, n_iter=self.n_iter, random_state=seed)
        self.components_ = _tensor(estimator.fit(rows).components_, self.compute_device)

    def _encode(self, rows: torch.Tensor) -> torch.Tensor:
        return rows @ self.components_.T

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return codes @ self.components_

    def _dictionary(self) -> torch.Tensor:
        return self.components_

    def _state(self) -> dict[str, torch.Tensor]:
        return {"components": self.components_}

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.components_ = tensors["components"]


def regrouped(batches: Iterable[torch.Tensor], size: int) -> Iterator[torch.Tensor]:
    """The rows of `batches` again, in minibatches of `size` rows (the last one may be shorter): the end of a
    shard makes a short batch, and incremental estimators need at least `nb_concepts` rows in their first."""
    pending: list[torch.Tensor] = []
    n_pending = 0
    for batch in batches:
        pending.append(batch)
        n_pending += batch.shape[0]
        while n_pending >= size:
            rows = torch.cat(pending)
            yield rows[:size]
            pending, n_pending = [rows[size:]], n_pending - size
    if n_pending:
        yield torch.cat(pending)


def _check_components(explainer: ConceptExplainer, data: ActivationData, method: str) -> None:
    limit = min(data.n_rows, data.dim)
    if explainer.nb_concepts > limit:
        raise ValueError(
            f"{method}: nb_concepts={explainer.nb_concepts} exceeds min(rows, hidden) = min({data.n_rows}, "
            f"{data.dim}) = {limit}: pass nb_concepts <= {limit} (or an overcomplete method: SAEs, "
            f"NMFConcepts)."
        )


def _tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float32)).to(device)
