"""K-means clusters as concepts: one centroid per concept, codes that grow toward the centroid."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from interpreto.concepts.base import ConceptExplainer
from interpreto.concepts.data import ActivationData, ActivationSource
from interpreto.concepts.decompositions import regrouped
from interpreto.model.split_points import ModelWithSplitPoints

ASSIGNMENTS = ("similarity", "soft", "hard")


class KMeansConcepts(ConceptExplainer):
    """K-means centroids `c_k` as concepts (the dictionary), with codes that grow toward the centroid.

    With `d_k(a) = ||a - c_k||^2` and the temperature `T`, `encode` gives, by `assignment`:

    - `"similarity"` (default): `z_k = exp(-d_k / T)`, 1 at the centroid and decreasing with the distance to
      it alone, so the inputs that score highest on a concept are the ones nearest its centroid (Interpreto
      0.5 returned the distances, so its top inputs were the farthest); `decode(z) = (z / sum_k z_k) C`.
    - `"soft"`: `z = softmax(-d / T)`, a distribution over clusters; `decode(z) = z C`, a convex combination
      of centroids. It measures how much nearer `c_k` is than the *other* centroids, so its largest values go
      to rows far out on the side away from them, not to the most typical rows: use it to reconstruct, not to
      rank.
    - `"hard"`: the one-hot of the nearest centroid; `decode(z) = z C` is exactly that centroid.

    `"similarity"` and `"soft"` codes are the same up to the row's normalization, so they decode alike. `T`
    defaults to the mean squared distance of the fitted rows to their nearest centroid (scale-free; stored
    with the centroids). A row farther than about `sqrt(87 T)` from every centroid has all similarities
    underflow to 0 in float32 and decodes to 0.

    Fitting: scikit-learn's `KMeans` (k-means++, `random_state=seed`) on rows in memory; a shard folder is
    streamed through `MiniBatchKMeans.partial_fit` (Sculley, 2010) for `nb_epochs` passes, one minibatch in
    memory at a time, and the default temperature takes one more pass.

    Args:
        model_with_split_points: the split model (see `ConceptExplainer`).
        nb_concepts: the number of clusters.
        split_point: the split point (see `ConceptExplainer`).
        assignment: `"similarity"`, `"soft"` or `"hard"` (see above).
        temperature: `T`; None computes it at fit as above.
        n_init: k-means++ restarts of `KMeans` (scikit-learn's `n_init`, `"auto"` = 1).
        max_iter: `KMeans` iterations.
        device: where encoding runs.

    Examples:
        >>> import torch
        >>> from interpreto.concepts import KMeansConcepts
        >>> acts = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.0, 5.1]])
        >>> kmeans = KMeansConcepts(None, nb_concepts=2, assignment="hard").fit(acts)
        >>> kmeans.encode(acts).sum(0).tolist()
        [2.0, 2.0]
        >>> kmeans.decode(kmeans.encode(acts[:1])).mul(100).round().tolist()  # the centroid (0.05, 0)
        [[5.0, 0.0]]
    """

    def __init__(
        self,
        model_with_split_points: ModelWithSplitPoints | None,
        nb_concepts: int,
        split_point: int | str | None = None,
        assignment: str = "similarity",
        temperature: float | None = None,
        n_init: int | str = "auto",
        max_iter: int = 300,
        device: torch.device | str | None = None,
    ):
        super().__init__(model_with_split_points, nb_concepts, split_point=split_point, device=device)
        self.assignment = assignment
        self.temperature = temperature
        self.n_init = n_init
        self.max_iter = max_iter

    def fit(
        self,
        activations: ActivationSource,
        seed: int = 0,
        progress: bool = True,
        batch_size: int = 1024,
        nb_epochs: int = 3,
    ) -> KMeansConcepts:
        """Fits the centroids: `KMeans` on rows in memory, `MiniBatchKMeans` streamed over a shard folder.

        Args:
            activations: see `ConceptExplainer.fit`.
            seed: scikit-learn's `random_state` (k-means++ start, minibatch order).
            progress: show a tqdm bar over the streamed minibatches.
            batch_size: rows per `partial_fit` when streaming (at least `3 * nb_concepts`).
            nb_epochs: passes over a shard folder.
        """
        return super().fit(
            activations, seed=seed, progress=progress, batch_size=batch_size, nb_epochs=nb_epochs
        )

    def _fit(
        self,
        data: ActivationData,
        seed: int = 0,
        progress: bool = True,
        batch_size: int = 1024,
        nb_epochs: int = 3,
    ) -> None:
        from sklearn.cluster import KMeans, MiniBatchKMeans

        if self.assignment not in ASSIGNMENTS:
            raise ValueError(f"assignment={self.assignment!r}: choose one of {list(ASSIGNMENTS)}.")
        if self.nb_concepts > data.n_rows:
            raise ValueError(
                f"nb_concepts={self.nb_concepts} clusters need at least as many rows, got {data.n_rows}."
            )
        if data.in_memory:
            rows = data.tensor()
            estimator = KMeans(
                self.nb_concepts, n_init=self.n_init, max_iter=self.max_iter, random_state=seed
            )
            estimator.fit(rows.numpy())
            passes = [rows]
        else:
            size = max(batch_size, 3 * self.nb_concepts)
            estimator = MiniBatchKMeans(self.nb_concepts, batch_size=size, random_state=seed, n_init=1)
            generator = torch.Generator().manual_seed(seed)
            bar = tqdm(
                total=nb_epochs * -(-data.n_rows // size), desc="MiniBatchKMeans", disable=not progress
            )
            for _ in range(nb_epochs):
                for batch in regrouped(data.batches(size, generator), size):
                    estimator.partial_fit(batch.numpy())
                    bar.update()
            bar.close()
            passes = data.batches(size, shuffle=False)
        self.centroids_ = torch.as_tensor(np.asarray(estimator.cluster_centers_, dtype=np.float32))
        self.centroids_ = self.centroids_.to(self.compute_device)
        temperature = self.temperature
        if temperature is None:
            nearest = sum(
                float(self._distances(b.to(self.compute_device)).min(1).values.sum()) for b in passes
            )
            temperature = nearest / data.n_rows if nearest > 0 else 1.0
        elif temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature!r} (or None to set it at fit).")
        self.temperature_ = torch.tensor([float(temperature)], device=self.compute_device)

    def _distances(self, rows: torch.Tensor) -> torch.Tensor:
        """Squared distances `(rows, nb_concepts)` to the centroids, never below 0."""
        return torch.cdist(rows, self.centroids_).square()

    def _encode(self, rows: torch.Tensor) -> torch.Tensor:
        distances = self._distances(rows)
        if self.assignment == "hard":
            return torch.nn.functional.one_hot(distances.argmin(1), self.nb_concepts).float()
        if self.assignment == "soft":
            return torch.softmax(-distances / self.temperature_, dim=1)
        return torch.exp(-distances / self.temperature_)

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        if self.assignment == "similarity":
            codes = codes / codes.sum(1, keepdim=True).clamp_min(torch.finfo(codes.dtype).tiny)
        return codes @ self.centroids_

    def _dictionary(self) -> torch.Tensor:
        return self.centroids_

    def _state(self) -> dict[str, torch.Tensor]:
        return {"centroids": self.centroids_, "temperature": self.temperature_}

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.centroids_, self.temperature_ = tensors["centroids"], tensors["temperature"]
