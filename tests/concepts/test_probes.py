"""Probes as supervised concepts: planted directions recovered, equality with scikit-learn, save and load."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from interpreto.concepts import (
    CentroidProbe,
    LinearRegressionProbe,
    LinearSVMProbe,
    LogisticRegressionProbe,
    MeansDiffProbe,
    NotFittedError,
    ProbeExplainer,
    load_concepts,
)
from interpreto.model.activations import Activations
from tests.tolerance import assert_close_to_scale

DIM = 32


def planted_classes(n_rows: int, n_classes: int, separation: float, seed: int, scales=None):
    """Gaussian classes `x = separation * u_y + noise` with unit class directions `u` (isotropic noise, so
    the Bayes-optimal binary direction is `u_1 - u_0`); optional per-feature `scales` make features anisotropic
    (the directions are then `scales * u`)."""
    generator = torch.Generator().manual_seed(seed)
    directions = torch.randn(n_classes, DIM, generator=generator)
    directions /= directions.norm(dim=1, keepdim=True)
    labels = torch.arange(n_rows) % n_classes
    rows = separation * directions[labels] + torch.randn(n_rows, DIM, generator=generator)
    if scales is not None:
        rows, directions = rows * scales, directions * scales
    return rows, labels, directions


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=0))


@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("probe_class", [LogisticRegressionProbe, LinearSVMProbe, MeansDiffProbe])
def test_binary_probe_direction_matches_planted_direction(probe_class, standardize):
    rows, labels, directions = planted_classes(3000, 2, separation=2.5, seed=0)
    train, test = slice(0, 2000), slice(2000, None)
    explainer = ProbeExplainer(None, probe_class(standardize=standardize))
    explainer.fit(rows[train], labels[train], seed=0)
    planted = directions[1] - directions[0]
    assert explainer.nb_concepts == 1 and explainer.concept_names == [1] and explainer.classes == [0, 1]
    # measured: cos 0.977 (logistic, SVM), 0.991 / 0.999 (means difference with / without standardisation)
    assert cosine(explainer.dictionary[0], planted) >= 0.95
    # the class means are 2.5 |u_1 - u_0| ~ 3.5 apart: Bayes accuracy Phi(1.77) ~ 0.96; measured 0.967
    assert explainer.score(rows[test], labels[test]) >= 0.95
    assert_close_to_scale(explainer.dictionary.norm(dim=1), torch.ones(1))


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("standardize", [True, False])
def test_logistic_probe_equals_sklearn(n_classes, standardize):
    scales = torch.linspace(0.2, 5.0, DIM)
    rows, labels, _ = planted_classes(300, n_classes, separation=2.0, seed=1, scales=scales)
    probe = LogisticRegressionProbe(C=0.5, standardize=standardize)
    explainer = ProbeExplainer(None, probe).fit(rows, labels, seed=3)
    x = rows.double().numpy()
    scaler = StandardScaler().fit(x) if standardize else None
    reference = LogisticRegression(C=0.5, max_iter=10_000, tol=1e-8).fit(
        scaler.transform(x) if standardize else x, labels.numpy()
    )
    sigma = scaler.scale_ if standardize else np.ones(DIM)
    mu = scaler.mean_ if standardize else np.zeros(DIM)
    expected_weight = reference.coef_ / sigma
    expected_bias = reference.intercept_ - (reference.coef_ * mu / sigma).sum(axis=1)
    assert_close_to_scale(explainer.weight, expected_weight, fraction=1e-3)
    assert_close_to_scale(explainer.bias, expected_bias, scale=np.abs(expected_weight).max(), fraction=1e-3)
    # the scores are logits in raw activation space: a @ W.T + b, equal to sklearn's decision function
    decision = reference.decision_function(scaler.transform(x) if standardize else x)
    decision = decision[:, None] if decision.ndim == 1 else decision
    assert_close_to_scale(explainer.encode(rows), decision, fraction=1e-3)
    assert explainer.predict(rows) == reference.predict(scaler.transform(x) if standardize else x).tolist()


def test_standardization_keeps_accuracy_and_reports_raw_weights():
    scales = torch.logspace(-1, 1, DIM)  # features from 0.1 to 10
    rows, labels, directions = planted_classes(1200, 2, separation=4.0, seed=2, scales=scales)
    train, test = slice(0, 600), slice(600, None)
    accuracies = {}
    for standardize in (True, False):
        explainer = ProbeExplainer(None, LogisticRegressionProbe(standardize=standardize))
        explainer.fit(rows[train], labels[train])
        accuracies[standardize] = explainer.score(rows[test], labels[test])
        assert_close_to_scale(explainer.encode(rows[test]), rows[test] @ explainer.weight.T + explainer.bias)
        if standardize:
            # raw-space weights: w~ / sigma, so the standardised solver's weights are weight * sigma
            sigma = rows[train].double().std(dim=0, unbiased=False)
            x_std = (rows[train].double() - rows[train].double().mean(dim=0)) / sigma
            ref = LogisticRegression(max_iter=10_000, tol=1e-8).fit(x_std.numpy(), labels[train].numpy())
            assert_close_to_scale(explainer.weight * sigma, ref.coef_, fraction=1e-3)
    # measured: 0.998 with and without standardisation
    assert min(accuracies.values()) >= 0.95
    assert abs(accuracies[True] - accuracies[False]) <= 0.02


@pytest.mark.parametrize(
    "probe_class", [LogisticRegressionProbe, LinearSVMProbe, MeansDiffProbe, CentroidProbe]
)
def test_multiclass_probe_gives_one_concept_per_class(probe_class):
    rows, codes, directions = planted_classes(1500, 3, separation=5.0, seed=4)
    names = np.array(["anger", "joy", "fear"])
    labels = names[codes.numpy()].tolist()
    explainer = ProbeExplainer(None, probe_class()).fit(rows[:900], labels[:900])
    assert explainer.nb_concepts == 3 and explainer.concept_names == ["anger", "fear", "joy"]
    assert explainer.score(rows[900:], labels[900:]) >= 0.95
    if probe_class is MeansDiffProbe:
        standardized = (rows[:900] - rows[:900].mean(0)) / rows[:900].std(0, unbiased=False)
        for k, name in enumerate(explainer.concept_names):
            inside = torch.tensor([label == name for label in labels[:900]])
            diff = standardized[inside].mean(0) - standardized[~inside].mean(0)
            # raw-space direction of the standardised difference of means: diff / sigma
            assert cosine(explainer.weight[k], diff / rows[:900].std(0, unbiased=False)) >= 0.9999


def test_centroid_probe_scores_are_minus_half_squared_distance():
    rows, labels, _ = planted_classes(300, 3, separation=10.0, seed=5)
    explainer = ProbeExplainer(None, CentroidProbe(standardize=True)).fit(rows, labels)
    mu, sigma = rows.mean(0), rows.std(0, unbiased=False)
    standardized = (rows - mu) / sigma
    centroids = torch.stack([standardized[labels == c].mean(0) for c in range(3)])
    expected = -0.5 * torch.cdist(standardized.double(), centroids.double()) ** 2
    assert_close_to_scale(explainer.encode(rows), expected, fraction=1e-4)
    raw_centroids = torch.stack([rows[labels == c].mean(0) for c in range(3)])
    # decode = softmax(z)-weighted centroids: a centroid's own scores decode back to it (clusters ~10 apart)
    assert_close_to_scale(explainer.decode(explainer.encode(raw_centroids)), raw_centroids, fraction=1e-4)


def test_regression_probe_recovers_planted_linear_target():
    generator = torch.Generator().manual_seed(6)
    rows = torch.randn(800, DIM, generator=generator) * torch.linspace(0.5, 2.0, DIM)
    beta = torch.randn(DIM, generator=generator)
    target = rows @ beta + 0.5 + 0.1 * torch.randn(800, generator=generator)
    explainer = ProbeExplainer(None, LinearRegressionProbe(alpha=1.0)).fit(rows[:400], target[:400])
    assert explainer.concept_names == ["target"] and explainer.classes is None
    # measured: R^2 = 0.9996 held out, cos 0.99999
    assert explainer.score(rows[400:], target[400:]) > 0.95
    assert cosine(explainer.dictionary[0], beta) >= 0.99
    x = rows[:400].double()
    ref = Ridge(alpha=1.0).fit(((x - x.mean(0)) / x.std(0, unbiased=False)).numpy(), target[:400].numpy())
    assert_close_to_scale(explainer.weight[0] * x.std(0, unbiased=False), ref.coef_, fraction=1e-4)
    assert_close_to_scale(explainer.predict(rows[400:]), rows[400:] @ explainer.weight[0] + explainer.bias)
    # two targets give two concepts
    both = torch.stack([target, -2 * target], dim=1)
    two = ProbeExplainer(None, LinearRegressionProbe()).fit(rows[:400], both[:400])
    assert two.concept_names == ["target_0", "target_1"] and two.score(rows[400:], both[400:]) > 0.95


def test_decode_is_least_squares_inverse_of_the_scores():
    rows, labels, _ = planted_classes(300, 3, separation=3.0, seed=7)
    generator = torch.Generator().manual_seed(0)
    mean = rows.mean(0, keepdim=True)
    # one-vs-rest SVM: three independent directions, so any codes are reached exactly
    svm = ProbeExplainer(None, LinearSVMProbe()).fit(rows, labels)
    codes = torch.randn(5, 3, generator=generator) * 4
    assert_close_to_scale(svm.encode(svm.decode(codes)), codes, fraction=1e-4)
    # multinomial logistic: the logits' weights sum to 0 (rank 2), so decode inverts the reachable codes
    logistic = ProbeExplainer(None, LogisticRegressionProbe()).fit(rows, labels)
    assert_close_to_scale(logistic.weight.sum(0), torch.zeros(DIM), scale=logistic.weight, fraction=1e-4)
    for explainer in (svm, logistic):
        codes = explainer.encode(rows[:5] + torch.randn(5, DIM, generator=generator))
        decoded = explainer.decode(codes)
        assert_close_to_scale(explainer.encode(decoded), codes, fraction=1e-4)
        # the activation closest to the training mean with those scores: decoded - mean lies in span(W)
        offset = decoded - mean
        projector = torch.linalg.pinv(explainer.weight) @ explainer.weight
        assert_close_to_scale(offset @ projector.T, offset, fraction=1e-4)
        assert_close_to_scale(explainer.decode(explainer.encode(mean)), mean, fraction=1e-4)


@pytest.mark.parametrize(
    "probe",
    [LogisticRegressionProbe(C=0.3), LinearSVMProbe(standardize=False), MeansDiffProbe(), CentroidProbe()],
)
def test_save_and_load_round_trip(tmp_path, probe):
    rows, codes, _ = planted_classes(200, 3, separation=3.0, seed=8)
    labels = [["neg", "neu", "pos"][k] for k in codes.tolist()]
    explainer = ProbeExplainer(None, probe, split_point="bert.encoder.layer.1").fit(rows, labels)
    assert explainer.probe is probe  # stored as given
    assert explainer.get_params()["probe"] == probe.to_config()
    loaded = load_concepts(explainer.save(tmp_path / "probe"))
    assert type(loaded) is ProbeExplainer and loaded.get_params() == explainer.get_params()
    assert loaded.classes == explainer.classes and loaded.concept_names == explainer.concept_names
    assert loaded.nb_concepts == explainer.nb_concepts == 3
    assert torch.equal(loaded.encode(rows), explainer.encode(rows))
    assert torch.equal(loaded.dictionary, explainer.dictionary)
    assert loaded.predict(rows) == explainer.predict(rows)
    codes = explainer.encode(rows[:4])
    assert_close_to_scale(loaded.decode(codes), explainer.decode(codes), fraction=1e-6)


def test_regression_and_binary_round_trip(tmp_path):
    rows, labels, _ = planted_classes(200, 2, separation=3.0, seed=9)
    for name, target in (("linear_regression", rows[:, 0] * 2.0), ("logistic_regression", labels)):
        explainer = ProbeExplainer(None, name).fit(rows, target)
        loaded = load_concepts(explainer.save(tmp_path / name))
        assert loaded.get_params() == explainer.get_params() and loaded.probe["name"] == name
        assert torch.equal(loaded.encode(rows), explainer.encode(rows))
        assert loaded.score(rows, target) == explainer.score(rows, target)


def test_labels_per_input_are_spread_over_its_rows():
    rows, labels, _ = planted_classes(100, 2, separation=4.0, seed=10)
    order = torch.argsort(labels, stable=True)  # rows 0-49 class 0, 50-99 class 1
    rows, spread = rows[order], labels[order]
    index = [(k // 2, k % 2, "w") for k in range(100)]  # two rows per input, both of one class
    acts = Activations(rows, index, "layer", "word")
    per_input = spread[::2]
    explainer = ProbeExplainer(None, MeansDiffProbe()).fit(acts, per_input)
    reference = ProbeExplainer(None, MeansDiffProbe()).fit(rows, spread)
    assert torch.equal(explainer.weight, reference.weight)
    assert explainer.score(acts, per_input) == reference.score(rows, spread) >= 0.95
    assert ProbeExplainer(None).fit(acts, per_input.tolist()).predict(rows)[:2] == [0, 0]


def test_same_seed_same_probe_and_seed_reaches_solver():
    rows, labels, _ = planted_classes(200, 2, separation=2.0, seed=11)
    first = ProbeExplainer(None, LinearSVMProbe()).fit(rows, labels, seed=5)
    again = ProbeExplainer(None, LinearSVMProbe()).fit(rows, labels, seed=5)
    assert torch.equal(first.weight, again.weight)


def test_probe_errors_name_the_fix():
    rows = torch.randn(10, 4)
    with pytest.raises(ValueError, match="at least two classes"):
        ProbeExplainer(None).fit(rows, [1] * 10)
    with pytest.raises(ValueError, match="10 activation rows"):
        ProbeExplainer(None).fit(rows, [0, 1] * 3)
    with pytest.raises(ValueError, match="unknown"):
        ProbeExplainer(None, probe="forest").fit(rows, [0, 1] * 5)
    with pytest.raises(NotFittedError):
        ProbeExplainer(None).encode(rows)


def test_unconverged_logistic_probe_warns_with_the_fix():
    rows, labels, _ = planted_classes(200, 3, separation=1.0, seed=12)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ProbeExplainer(None, LogisticRegressionProbe(max_iter=2)).fit(rows, labels)
    messages = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(messages) == 1 and "max_iter=2" in messages[0]


def test_probe_on_split_model_activations_with_labels_per_text(tmp_path):
    from interpreto import ModelWithSplitPoints
    from interpreto.zoo.tiny import tiny_bert_classifier

    model, tokenizer = tiny_bert_classifier(num_labels=2, seed=0)
    split = ModelWithSplitPoints(model, split_points=[0, 1], tokenizer=tokenizer, progress=False)
    texts = ["a good movie", "bad", "i love it", "what a terrible day", "the best film", "boring and long"]
    labels = ["pos", "neg", "pos", "neg", "pos", "neg"]
    activations = split.get_activations(texts, granularity="token")
    explainer = ProbeExplainer(split, MeansDiffProbe(), split_point=1).fit(activations, labels)
    rows = activations["bert.encoder.layer.1"]
    spread = [labels[k] for k in rows.input_indices.tolist()]
    reference = ProbeExplainer(None, MeansDiffProbe()).fit(rows.activations, spread)
    assert explainer.fitted_split_point == "bert.encoder.layer.1" and explainer.concept_names == ["pos"]
    assert torch.equal(explainer.weight, reference.weight)
    loaded = load_concepts(explainer.save(tmp_path / "probe"), model_with_split_points=split)
    assert loaded.fitted_split_point == "bert.encoder.layer.1"
    assert loaded.predict(rows) == explainer.predict(rows)
