"""Concept metrics: the closed forms of the concept-evaluation issue, streaming equals in memory, and the
defects of the peers (Frobenius "MSE", explained variance around zero, 1-D "FID", signed stability)."""

from __future__ import annotations

import json

import pytest
import torch

from interpreto.concepts import ConceptExplainer, NMFConcepts, PCAConcepts, TopKSAEConcepts
from interpreto.evaluation import (
    L0,
    MSE,
    DeadConcepts,
    ExplainedVariance,
    FrechetDistance,
    Stability,
)
from interpreto.evaluation.concepts import density_histogram
from interpreto.model.activations import Activations, save_shard
from tests.concepts.planted import planted_activations
from tests.tolerance import assert_close_to_scale


def gaussian(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


class MeanPredictor(ConceptExplainer):
    """Reconstructs every row as the mean of the rows it was fitted on."""

    def __init__(self):
        super().__init__(None, 1)

    def _fit(self, data, **kwargs):
        self.mean_ = data.tensor().double().mean(dim=0)

    def _encode(self, rows):
        return torch.zeros(rows.shape[0], 1)

    def _decode(self, codes):
        return self.mean_.float().expand(codes.shape[0], -1)


# ---- MSE ----------------------------------------------------------------------------------------------------


def test_mse_is_a_mean_unchanged_when_the_same_errors_repeat_4x():
    x, errors = gaussian(250, 8, 0), 0.3 * gaussian(250, 8, 1)
    once = MSE().compute(None, x, reconstruction=x + errors)
    four = MSE().compute(None, x.repeat(4, 1), reconstruction=(x + errors).repeat(4, 1))
    assert_close_to_scale(once.value, (errors**2).mean(), fraction=1e-12)
    assert_close_to_scale(four.value, once.value, fraction=1e-12)
    # Interpreto 0.5's Frobenius norm doubles on the same data repeated 4x
    assert_close_to_scale(
        torch.linalg.norm(errors.repeat(4, 1)), 2 * torch.linalg.norm(errors), fraction=1e-12
    )
    assert_close_to_scale(once.per_row, (errors**2).sum(dim=1), fraction=1e-12)
    relative = (errors.norm(dim=1) / x.norm(dim=1)).mean()
    assert_close_to_scale(once.details["relative_error"], relative, fraction=1e-12)
    assert once.higher_is_better is False
    assert json.loads(json.dumps(once.to_dict()))["value"] == pytest.approx(once.value, rel=1e-15)


def test_mse_rejects_mismatched_shapes_and_missing_reconstruction():
    x = gaussian(10, 3, 0)
    with pytest.raises(ValueError, match="shape"):
        MSE().compute(None, x, reconstruction=x[:, :2])
    with pytest.raises(ValueError, match="reconstruction="):
        MSE().compute(None, x)


# ---- explained variance ---------------------------------------------------------------------------------------


def test_explained_variance_of_a_mean_predictor_is_0_even_far_from_zero():
    x = 1000.0 + gaussian(400, 16, 2) * torch.linspace(0.5, 3.0, 16, dtype=torch.float64)
    mean = x.mean(dim=0).expand_as(x)
    result = ExplainedVariance(batch_size=37).compute(None, x, reconstruction=mean)
    assert abs(result.value) <= 1e-12
    assert ExplainedVariance().compute(None, x, reconstruction=x).value == 1.0
    halfway = mean + 0.5 * (x - mean)  # residual = 1/4 of the variance
    assert_close_to_scale(
        ExplainedVariance().compute(None, x, reconstruction=halfway).value, 0.75, fraction=1e-12
    )
    # SAELens 6.18 measured the variance around zero: the mean predictor would score almost 1
    around_zero = 1 - ((x - mean) ** 2).sum() / (x**2).sum()
    assert around_zero > 0.99
    assert_close_to_scale(result.details["fvu"], 1.0, fraction=1e-12)


def test_explained_variance_of_a_fitted_mean_predictor_streams_in_float64():
    x = (500.0 + gaussian(300, 6, 3)).float()
    result = ExplainedVariance(batch_size=16).compute(MeanPredictor().fit(x), x)
    assert abs(result.value) <= 1e-6  # only the float32 rounding of the mean itself remains


def test_explained_variance_of_equal_rows_is_an_error():
    x = torch.ones(5, 3)
    with pytest.raises(ValueError, match="zero variance"):
        ExplainedVariance().compute(None, x, reconstruction=x)


# ---- Frechet distance -----------------------------------------------------------------------------------------


def test_frechet_distance_closed_forms():
    x = gaussian(3000, 5, 4)
    mu = torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0], dtype=torch.float64)  # ||mu||^2 = 14.25
    same = FrechetDistance(batch_size=500).compute(None, x, reconstruction=x.clone())
    assert abs(same.value) <= 1e-9 * 5
    shifted = FrechetDistance(batch_size=500).compute(None, x, reconstruction=x + mu)
    assert_close_to_scale(shifted.value, 14.25, fraction=1e-9)
    # independent samples of N(0, I) and N(mu, I): ||mu||^2 up to the sampling error of the moments
    other = FrechetDistance().compute(None, gaussian(20000, 5, 5), reconstruction=gaussian(20000, 5, 6) + mu)
    assert_close_to_scale(other.value, 14.25, scale=14.25, fraction=0.03)
    independent = FrechetDistance().compute(None, gaussian(20000, 5, 7), reconstruction=gaussian(20000, 5, 8))
    assert independent.value < 0.01


def test_frechet_distance_detects_destroyed_correlations_with_identical_marginals():
    generator = torch.Generator().manual_seed(9)
    n = 4000
    x = torch.randn(n, 1, generator=generator, dtype=torch.float64) * torch.ones(4, dtype=torch.float64)
    x = x + 0.1 * torch.randn(n, 4, generator=generator, dtype=torch.float64)
    # each dimension shuffled across rows on its own: the same marginals, no correlation left
    shuffled = torch.stack([x[torch.randperm(n, generator=generator), j] for j in range(4)], dim=1)
    mean_1d_wasserstein = (x.sort(dim=0).values - shuffled.sort(dim=0).values).abs().mean()
    assert mean_1d_wasserstein == 0.0  # Interpreto 0.5's "FID"
    # population covariances J + 0.01 I and 1.01 I: FD = 8.08 - 2 sqrt(1.01) (2.0025 + 3 * 0.1) = 3.452
    result = FrechetDistance().compute(None, x, reconstruction=shuffled)
    assert_close_to_scale(result.value, 3.452, scale=3.452, fraction=0.05)


def test_frechet_distance_needs_more_rows_than_dimensions():
    x = gaussian(4, 4, 0)
    with pytest.raises(ValueError, match="n=4 rows of d=4"):
        FrechetDistance().compute(None, x, reconstruction=x)


# ---- streaming ------------------------------------------------------------------------------------------------


def test_streaming_over_shards_equals_in_memory(tmp_path):
    x, _, _ = planted_activations(700, 8, 16, active=2, noise=0.05, seed=0)
    x = x + 3.0  # a mean away from zero
    start = 0
    for shard, size in enumerate([250, 300, 150]):
        rows = x[start : start + size]
        index = [(start + k, 0, "t") for k in range(size)]
        save_shard(tmp_path, shard, Activations(rows, index, "layer.0", "token"))
        start += size
    pca = PCAConcepts(None, nb_concepts=4).fit(x)
    for metric in (MSE, ExplainedVariance, FrechetDistance, L0, DeadConcepts):
        memory = metric(batch_size=1000).compute(pca, x)
        streamed = metric(batch_size=64).compute(pca, tmp_path)
        # the float64 sums agree; only the explainer's float32 reconstruction rounds differently per batch
        assert_close_to_scale(streamed.value, memory.value, fraction=1e-6, msg=metric.__name__)
        assert_close_to_scale(streamed.per_row, memory.per_row, fraction=1e-6, msg=metric.__name__)
    explained = ExplainedVariance().compute(pca, x).value
    assert 0.3 < explained < 1.0  # 4 components of 8 planted atoms


# ---- sparsity -------------------------------------------------------------------------------------------------


def test_l0_of_topk_codes_equals_k():
    scores = gaussian(200, 32, 10).abs()
    top = scores.topk(5, dim=1)
    codes = torch.zeros_like(scores).scatter(1, top.indices, top.values)
    result = L0(batch_size=33).compute(codes=codes)
    assert result.value == 5.0 and bool((result.per_row == 5).all())
    assert_close_to_scale(result.per_concept.sum(), 5.0, fraction=1e-12)  # densities add up to L0
    assert result.details["fraction_of_concepts"] == 5 / 32

    x, _, _ = planted_activations(512, 8, 16, active=2, noise=0.02, seed=1)
    sae = TopKSAEConcepts(None, nb_concepts=24, top_k=3).fit(x, nb_epochs=2, batch_size=128, progress=False)
    assert L0().compute(sae, x).value == 3.0


def test_dead_and_dense_concepts_over_the_whole_set():
    generator = torch.Generator().manual_seed(11)
    codes = torch.rand(100, 6, generator=generator) * (torch.rand(100, 6, generator=generator) < 0.05)
    codes[:, [1, 4]] = 0.0  # two dead concepts
    codes[:, 2] = 1.0  # one dense concept
    codes[0, 5] = 0.5  # active once: alive, even though only in the first batch
    result = DeadConcepts(batch_size=10, dense_threshold=0.5).compute(codes=codes)
    assert result.value == 2.0 and result.details["dead_indices"] == [1, 4]
    assert result.details["dense_indices"] == [2] and result.details["dead_fraction"] == 2 / 6
    assert_close_to_scale(result.per_concept, (codes != 0).double().mean(dim=0), fraction=1e-12)
    histogram = result.details["density_histogram"]
    assert histogram["dead"] == 2 and sum(histogram["counts"]) == 4
    assert histogram["log10_edges"][0] == -2.0 and histogram["log10_edges"][-1] == 0.0
    assert histogram["counts"][-1] >= 1  # the dense concept, density 1
    assert json.dumps(result.to_dict())


def test_density_histogram_bins():
    density = torch.tensor([0.0, 0.001, 0.01, 0.1, 1.0], dtype=torch.float64)
    histogram = density_histogram(density, n_rows=1000, n_bins=3)
    assert histogram == {"log10_edges": [-3.0, -2.0, -1.0, 0.0], "counts": [1, 1, 2], "dead": 1}


# ---- stability ------------------------------------------------------------------------------------------------


def test_stability_of_a_sign_flipped_permuted_copy_is_1_and_of_a_random_dictionary_low():
    dictionary = gaussian(16, 64, 12)
    signs = torch.where(torch.arange(16) % 2 == 0, 1.0, -1.0).double()[:, None]
    copy = (signs * dictionary)[torch.randperm(16, generator=torch.Generator().manual_seed(0))]
    result = Stability().compute([dictionary, copy])
    assert_close_to_scale(result.value, 1.0, fraction=1e-12)
    assert result.details["similarity"] == "|cos|"
    assert_close_to_scale(result.per_concept, torch.ones(16), fraction=1e-12)
    random = Stability().compute([dictionary, gaussian(16, 64, 13), gaussian(16, 64, 14)])
    assert random.value < 0.4 and len(random.details["per_pair"]) == 3 and random.details["std"] > 0
    # the signed cosine (Interpreto 0.5) punishes the flipped half
    assert Stability(sign="signed").compute([dictionary, copy]).value < 0.6


def test_stability_signed_for_non_negative_dictionaries_and_single_dictionary_error():
    generator = torch.Generator().manual_seed(15)
    dictionary = torch.rand(5, 8, generator=generator)
    result = Stability().compute([dictionary, dictionary.flip(0)])
    assert result.details["similarity"] == "cos" and result.details["identical_pairs"] == 0
    assert_close_to_scale(result.value, 1.0, fraction=1e-12)
    with pytest.raises(ValueError, match="at least two"):
        Stability().compute([dictionary])
    with pytest.raises(ValueError, match="hidden sizes"):
        Stability().compute([dictionary, dictionary[:, :4]])


def test_stability_fit_and_compute_over_seeds():
    x, _, _ = planted_activations(300, 6, 12, active=2, noise=0.02, seed=2)
    pca = Stability().fit_and_compute(
        lambda: PCAConcepts(None, nb_concepts=4), x, seeds=(0, 1), progress=False
    )
    assert pca.value > 0.999 and pca.details["seeds"] == [0, 1]  # PCA is unique up to sign
    nmf = Stability().fit_and_compute(
        lambda: NMFConcepts(None, nb_concepts=6), x.abs(), seeds=(0, 1, 2), progress=False
    )
    assert nmf.details["similarity"] == "cos" and nmf.details["identical_pairs"] < 3
    assert 0.0 < nmf.value <= 1.0
    with pytest.raises(ValueError, match="two different seeds"):
        Stability().fit_and_compute(lambda: PCAConcepts(None, nb_concepts=4), x, seeds=(0, 0))
