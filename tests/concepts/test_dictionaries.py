"""The dictionary-learning families: NMF / semi-NMF / convex NMF, PCA / ICA / SVD, k-means.

Values, not shapes: planted atoms recovered, equality with scikit-learn and overcomplete on the same data and
seed, exact PCA reconstruction, streamed fits matching in-memory ones, codes solving their least squares
problem.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment, nnls

from interpreto.concepts import (
    ConvexNMFConcepts,
    ICAConcepts,
    KMeansConcepts,
    NMFConcepts,
    PCAConcepts,
    SemiNMFConcepts,
    SVDConcepts,
)
from interpreto.concepts._overcomplete import import_overcomplete
from interpreto.concepts.data import ActivationData
from interpreto.model.activations import Activations, save_shard
from tests.concepts.planted import matched_cosine, planted_activations
from tests.tolerance import assert_close_to_scale

SPLIT = "layer.0"


def nonnegative_planted(seed: int = 0, n_rows: int = 400, noise: float = 0.01):
    """`X = Z D+ + noise` clamped at 0, with planted codes `Z` and sparse non-negative unit atoms `D+`."""
    _, codes, atoms = planted_activations(n_rows, 8, 32, active=3, noise=0.0, seed=seed)
    atoms = torch.nn.functional.normalize(atoms.clamp_min(0), dim=1)
    generator = torch.Generator().manual_seed(seed + 1)
    rows = (codes @ atoms + noise * torch.randn(n_rows, 32, generator=generator)).clamp_min(0)
    return rows, codes, atoms


def write_shards(folder: Path, rows: torch.Tensor, shard_rows: int) -> Path:
    """Writes `rows` as shards of `shard_rows` rows, the layout of `get_activations(..., save_dir=folder)`."""
    for shard, start in enumerate(range(0, rows.shape[0], shard_rows)):
        part = rows[start : start + shard_rows]
        index = [(start + i, 0, "t") for i in range(part.shape[0])]
        save_shard(folder, shard, Activations(part.contiguous(), index, SPLIT, "token"))
    return folder


def blobs(seed: int = 0, n_rows: int = 300, n_clusters: int = 4, dim: int = 8):
    """Well-separated Gaussian clusters: centers at scale 4, unit noise."""
    generator = torch.Generator().manual_seed(seed)
    centers = 4 * torch.randn(n_clusters, dim, generator=generator)
    labels = torch.arange(n_rows) % n_clusters
    return centers[labels] + torch.randn(n_rows, dim, generator=generator), centers


# ---- NMF family --------------------------------------------------------------------------------------------


def test_nmf_recovers_planted_nonnegative_atoms():
    rows, codes, atoms = nonnegative_planted()
    nmf = NMFConcepts(None, nb_concepts=8).fit(rows, progress=False)
    mean_cos, per_atom = matched_cosine(nmf.dictionary, atoms)
    assert mean_cos >= 0.99 and float(per_atom.min()) >= 0.95, (mean_cos, per_atom)  # measured 0.9999
    encoded = nmf.encode(rows)
    assert (encoded >= 0).all() and (nmf.dictionary >= 0).all()
    error = (nmf.decode(encoded) - rows).norm() / rows.norm()
    assert error < 0.03, error  # the noise alone is ~0.013 of the rows' norm
    # each learned concept's codes follow its planted atom's codes
    similarity = (
        torch.nn.functional.normalize(atoms, dim=1) @ torch.nn.functional.normalize(nmf.dictionary, dim=1).T
    )
    atom_index, concept_index = linear_sum_assignment(-similarity.numpy())
    correlation = np.corrcoef(codes[:, atom_index].T.numpy(), encoded[:, concept_index].T.numpy())
    assert np.diag(correlation[:8, 8:]).min() > 0.95


def test_nmf_dictionary_equals_overcomplete_nmf():
    import_overcomplete()
    from overcomplete.optimization import NMF

    rows, _, _ = nonnegative_planted(n_rows=200)
    ours = NMFConcepts(None, nb_concepts=6, max_iter=50).fit(rows, seed=3, progress=False)
    state = np.random.get_state()
    try:
        np.random.seed(3)  # overcomplete's NNDSVDa start draws from numpy's global generator
        _, theirs = NMF(6, solver="mu").fit(rows, max_iter=50)
    finally:
        np.random.set_state(state)
    assert_close_to_scale(ours.dictionary, theirs, fraction=1e-5)


def test_semi_and_convex_nmf_equal_overcomplete_on_signed_rows():
    import_overcomplete()
    from overcomplete.optimization import ConvexNMF, SemiNMF

    rows, _, _ = planted_activations(200, 6, 16, active=2, noise=0.02, seed=1)
    assert (rows < 0).any()
    semi = SemiNMFConcepts(None, nb_concepts=6, max_iter=100).fit(rows, seed=5, progress=False)
    convex = ConvexNMFConcepts(None, nb_concepts=6, max_iter=100).fit(rows, seed=5, progress=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        _, semi_dictionary = SemiNMF(6).fit(rows, max_iter=100)
        torch.manual_seed(5)
        reference = ConvexNMF(6)
        reference.fit(rows, max_iter=100)
    assert_close_to_scale(semi.dictionary, semi_dictionary, fraction=1e-5)
    weights = reference.W / reference.W.sum(dim=1, keepdim=True)  # we rescale W to convex weights
    assert_close_to_scale(convex.dictionary, weights @ rows, fraction=1e-5)
    # semi-NMF: signed dictionary, non-negative codes, a close reconstruction of signed rows
    assert (semi.dictionary < 0).any() and (semi.encode(rows) >= 0).all()
    assert (semi.reconstruct(rows) - rows).norm() / rows.norm() < 0.1
    # convex NMF: every concept is a weighted average of rows, inside their range
    assert (convex.dictionary >= rows.min(0).values - 1e-5).all()
    assert (convex.dictionary <= rows.max(0).values + 1e-5).all()


@pytest.mark.parametrize("penalty", [0.0, 0.05])
def test_encode_solves_nonnegative_least_squares(penalty):
    rows, _, _ = nonnegative_planted(n_rows=200)
    semi = SemiNMFConcepts(None, nb_concepts=8, max_iter=100, l1_penalty=penalty).fit(rows, progress=False)
    dictionary = semi.dictionary.double().numpy()
    # overcomplete's loss mse + l1_penalty x mean|Z| is, per row, ||a - zD||^2 + 2 p sum(z) with
    # p = l1_penalty x dim / nb_concepts / 2: the plain NNLS of the target a - D^T (D D^T)^-1 p 1
    shift = penalty * 32 / 8 / 2 * np.linalg.solve(dictionary @ dictionary.T, np.ones(8))
    expected = [nnls(dictionary.T, row - dictionary.T @ shift)[0] for row in rows[:20].double().numpy()]
    encoded = semi.encode(rows[:20])
    assert_close_to_scale(encoded, np.stack(expected), fraction=1e-3)
    # a row's code does not depend on the rows encoded with it
    assert_close_to_scale(semi.encode(rows[3:4]), encoded[3:4], fraction=1e-4)


def test_nmf_on_signed_rows_raises_unless_shift_or_relu():
    rows, _, _ = nonnegative_planted(n_rows=400)
    rows[0] = 0.0  # every column's minimum is 0, so the shift of `rows - 0.25` is exactly -0.25
    signed = rows - 0.25
    with pytest.raises(ValueError, match="non_negative="):
        NMFConcepts(None, nb_concepts=8).fit(signed, progress=False)
    plain = NMFConcepts(None, nb_concepts=8).fit(rows, progress=False)
    with pytest.raises(ValueError, match="non_negative="):
        plain.encode(signed)

    shift = NMFConcepts(None, nb_concepts=8, non_negative="shift").fit(signed, progress=False)
    assert_close_to_scale(shift.shift_, torch.full((32,), -0.25))
    # NMF of the shifted rows, the shift added back at decode
    assert_close_to_scale(shift.dictionary, plain.dictionary, fraction=1e-4)
    assert_close_to_scale(shift.encode(signed), plain.encode(rows), fraction=1e-4)
    assert_close_to_scale(shift.reconstruct(signed), plain.reconstruct(rows) - 0.25, fraction=1e-4)
    assert (shift.reconstruct(signed) - signed).norm() / signed.norm() < 0.03
    # a row below the fitted minimum is clamped at 0 after the shift
    assert_close_to_scale(shift.encode(signed[1:2] - 1.0), plain.encode((rows[1:2] - 1.0).clamp_min(0)))

    relu = NMFConcepts(None, nb_concepts=8, non_negative="relu").fit(signed, progress=False)
    relu_reference = NMFConcepts(None, nb_concepts=8).fit(signed.clamp_min(0), progress=False)
    assert_close_to_scale(relu.dictionary, relu_reference.dictionary, fraction=1e-6)
    assert_close_to_scale(relu.encode(signed), relu_reference.encode(signed.clamp_min(0)), fraction=1e-6)
    assert_close_to_scale(relu.decode(torch.zeros(1, 8)), torch.zeros(1, 32))
    with pytest.raises(ValueError, match="non_negative="):
        NMFConcepts(None, nb_concepts=8, non_negative="abs").fit(rows, progress=False)


# ---- PCA / ICA / SVD ---------------------------------------------------------------------------------------


def test_pca_matches_scikit_learn_and_reconstructs_exactly_with_all_components():
    from sklearn.decomposition import PCA

    rows, _, _ = planted_activations(300, 8, 32, active=3, noise=0.05, seed=2)
    rows = rows + 3.0  # an offset, to check the centering
    pca = PCAConcepts(None, nb_concepts=5).fit(rows, seed=0)
    reference = PCA(n_components=5, random_state=0).fit(rows.numpy())
    signs = torch.sign((pca.dictionary * torch.from_numpy(reference.components_)).sum(1))
    assert (signs != 0).all()
    assert_close_to_scale(pca.dictionary * signs[:, None], reference.components_, fraction=1e-4)
    assert_close_to_scale(pca.encode(rows) * signs, reference.transform(rows.numpy()), fraction=1e-4)
    assert_close_to_scale(
        pca.decode(pca.encode(rows)), reference.inverse_transform(reference.transform(rows))
    )

    full = PCAConcepts(None, nb_concepts=32).fit(rows)
    error = (full.reconstruct(rows) - rows).abs().max() / rows.abs().max()
    assert error < 1e-5, error  # measured ~3e-7: float32 round-off of the data scale


def test_incremental_pca_on_shards_spans_the_in_memory_subspace(tmp_path):
    rows, _, _ = planted_activations(600, 8, 32, active=3, noise=0.02, seed=3)
    folder = write_shards(tmp_path, rows, shard_rows=250)  # 250 + 250 + 100 rows: a short last shard
    streamed = PCAConcepts(None, nb_concepts=8).fit(folder, batch_size=64, progress=False)
    assert not ActivationData(folder).in_memory
    exact = PCAConcepts(None, nb_concepts=8).fit(rows)
    cosines = torch.linalg.svdvals(streamed.dictionary.double() @ exact.dictionary.double().T)
    angles = torch.arccos(cosines.clamp(max=1))
    assert angles.max() < 1e-2, angles  # radians between the two 8-dimensional subspaces
    assert_close_to_scale(streamed.mean_, rows.mean(0), scale=rows.abs().max(), fraction=1e-5)
    assert_close_to_scale(streamed.explained_variance_, exact.explained_variance_, fraction=1e-2)


def test_ica_matches_scikit_learn_fastica_and_unmixes_sources():
    from sklearn.decomposition import FastICA

    generator = torch.Generator().manual_seed(4)
    sources = torch.rand(500, 3, generator=generator) - 0.5  # uniform: non-Gaussian
    mixing = torch.randn(3, 10, generator=generator)
    rows = sources @ mixing + 1.0
    ica = ICAConcepts(None, nb_concepts=3).fit(rows, seed=7)
    reference = FastICA(n_components=3, whiten="unit-variance", random_state=7).fit(rows.numpy())
    assert_close_to_scale(ica.encode(rows), reference.transform(rows.numpy()), fraction=1e-4)
    assert_close_to_scale(ica.dictionary, reference.mixing_.T, fraction=1e-4)
    codes = ica.encode(rows)
    assert_close_to_scale(ica.decode(codes), reference.inverse_transform(codes.numpy()), fraction=1e-4)
    assert_close_to_scale(ica.reconstruct(rows), rows, fraction=1e-4)  # 3 sources: exact
    correlation = np.abs(np.corrcoef(sources.T.numpy(), codes.T.numpy())[:3, 3:])
    assert correlation.max(1).min() > 0.99  # each source is one concept


def test_svd_matches_truncated_svd_without_centering():
    from sklearn.decomposition import TruncatedSVD

    rows, _, _ = planted_activations(300, 8, 32, active=3, noise=0.05, seed=5)
    rows = rows + 2.0
    svd = SVDConcepts(None, nb_concepts=4).fit(rows, seed=1)
    reference = TruncatedSVD(n_components=4, random_state=1).fit(rows.numpy())
    signs = torch.sign((svd.dictionary * torch.from_numpy(reference.components_)).sum(1))
    assert_close_to_scale(svd.dictionary * signs[:, None], reference.components_, fraction=1e-4)
    assert_close_to_scale(svd.encode(rows) * signs, reference.transform(rows.numpy()), fraction=1e-4)
    assert_close_to_scale(
        svd.decode(svd.encode(rows)), reference.inverse_transform(reference.transform(rows))
    )
    # no centering: the first component follows the mean row
    cosine = torch.nn.functional.cosine_similarity(svd.dictionary[0], rows.mean(0), dim=0)
    assert cosine.abs() > 0.99


# ---- k-means -----------------------------------------------------------------------------------------------


def test_kmeans_codes_grow_toward_the_centroid():
    from sklearn.cluster import KMeans

    rows, _ = blobs()
    kmeans = KMeansConcepts(None, nb_concepts=4).fit(rows, seed=2)
    reference = KMeans(4, n_init="auto", random_state=2).fit(rows.numpy())
    assert_close_to_scale(kmeans.dictionary, reference.cluster_centers_, fraction=1e-5)
    distances = torch.cdist(rows.double(), kmeans.dictionary.double()).square()
    assert_close_to_scale(float(kmeans.temperature_), reference.inertia_ / rows.shape[0], fraction=1e-4)

    similarity = kmeans.encode(rows)  # default: exp(-d^2 / T), ordered as the distances to each centroid
    assert (similarity.argmax(0) == distances.argmin(0)).all()
    for k in range(4):
        order = distances[:, k].argsort()
        assert (similarity[order, k].diff() <= 0).all()

    soft = KMeansConcepts(None, nb_concepts=4, assignment="soft").fit(rows, seed=2)
    probabilities = soft.encode(rows)
    assert_close_to_scale(probabilities.sum(1), torch.ones(rows.shape[0]), fraction=1e-6)
    assert (probabilities.argmax(1) == distances.argmin(1)).all()
    assert_close_to_scale(soft.reconstruct(rows), kmeans.reconstruct(rows), fraction=1e-5)

    hard = KMeansConcepts(None, nb_concepts=4, assignment="hard").fit(rows, seed=2)
    onehot = hard.encode(rows)
    assert torch.equal(onehot.argmax(1), distances.argmin(1)) and torch.equal(onehot.sum(1), torch.ones(300))
    assert torch.equal(hard.decode(onehot), hard.dictionary[distances.argmin(1)])


def test_minibatch_kmeans_on_shards_finds_the_clusters(tmp_path):
    rows, centers = blobs(seed=1, n_rows=600)
    folder = write_shards(tmp_path, rows, shard_rows=200)
    streamed = KMeansConcepts(None, nb_concepts=4).fit(folder, batch_size=100, progress=False)
    gaps = torch.cdist(streamed.dictionary, centers)
    matched_rows, matched_cols = linear_sum_assignment(gaps.numpy())
    # the centers are ~4 x sqrt(2 x 8) = 16 apart; the cluster means are within ~0.2 of them
    assert gaps[matched_rows, matched_cols].max() < 0.5
    nearest = torch.cdist(rows, streamed.dictionary).square().min(1).values.mean()
    assert_close_to_scale(float(streamed.temperature_), nearest, fraction=1e-4)


# ---- seeds -------------------------------------------------------------------------------------------------

RANDOMIZED = {
    "ica": (lambda: ICAConcepts(None, nb_concepts=4), "signed"),
    "kmeans": (lambda: KMeansConcepts(None, nb_concepts=6), "signed"),
    "semi_nmf": (lambda: SemiNMFConcepts(None, nb_concepts=4, max_iter=30), "signed"),
    "convex_nmf": (lambda: ConvexNMFConcepts(None, nb_concepts=4, max_iter=30), "signed"),
    "nmf_random_init": (lambda: NMFConcepts(None, nb_concepts=4, init="random", max_iter=30), "nonnegative"),
}
SEEDED = RANDOMIZED | {
    "nmf": (lambda: NMFConcepts(None, nb_concepts=4, max_iter=30), "nonnegative"),
    "pca": (lambda: PCAConcepts(None, nb_concepts=4), "signed"),
    "svd": (lambda: SVDConcepts(None, nb_concepts=4), "signed"),
}


def seed_data(kind: str) -> torch.Tensor:
    rows = torch.rand(120, 8, generator=torch.Generator().manual_seed(9))  # uniform: FastICA converges
    return rows if kind == "nonnegative" else rows - 0.5


@pytest.mark.parametrize("name", SEEDED)
def test_same_seed_same_dictionary(name):
    make, kind = SEEDED[name]
    rows = seed_data(kind)
    state = torch.get_rng_state()
    first = make().fit(rows, seed=11, progress=False)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's generator is left as it was
    assert torch.equal(first.dictionary, make().fit(rows, seed=11, progress=False).dictionary)


@pytest.mark.parametrize("name", RANDOMIZED)
def test_different_seeds_different_dictionaries(name):
    make, kind = RANDOMIZED[name]
    rows = seed_data(kind)
    first = make().fit(rows, seed=0, progress=False).dictionary
    second = make().fit(rows, seed=1, progress=False).dictionary
    assert not torch.allclose(first, second, atol=1e-3)
