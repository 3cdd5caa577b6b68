"""CAVs and TCAV: directional derivatives equal autograd's, planted directions score 1 (and -v 0), the
significance test separates a planted concept from random ones, and the user's model is left as it was."""

from __future__ import annotations

import pytest
import torch

from interpreto import ModelWithSplitPoints
from interpreto.concepts import (
    CAV,
    TCAV,
    CentroidProbe,
    LinearRegressionProbe,
    LogisticRegressionProbe,
    MeansDiffProbe,
)
from interpreto.model.activations import Activations
from interpreto.zoo.tiny import tiny_bert_classifier, tiny_llama
from tests.conftest import assert_unchanged, snapshot
from tests.tolerance import assert_close_to_scale

TEXTS = [
    "a good movie",
    "bad",
    "the film was not great at all",
    "i love it",
    "what a terrible day",
    "it is fine",
    "never again",
    "the best film of the year",
    "boring and long",
    "so so",
    "an unbelievable story",
    "we like the actors",
]


@pytest.fixture(scope="module")
def bert2():
    return tiny_bert_classifier(num_labels=2, seed=0)


def splitter(model, tokenizer, split_points, batch_size=4):
    return ModelWithSplitPoints(
        model, split_points=split_points, tokenizer=tokenizer, progress=False, batch_size=batch_size
    )


def head_direction(model) -> torch.Tensor:
    """`v = W_pool^-1 w_1`: at the last layer's `[CLS]`, `grad logit_1 . v = sum_j (1 - tanh^2(pre_j)) w_1j^2 > 0`
    for every input (the pooler is `tanh(W_pool h + b)`, the head `w_1 . pooled`)."""
    weight = model.bert.pooler.dense.weight.detach().double()
    return torch.linalg.solve(weight, model.classifier.weight[1].detach().double()).float()


@pytest.mark.parametrize("positions", ["sum", "first", "last"])
def test_directional_derivatives_equal_autograd(bert2, positions):
    model, tokenizer = bert2
    tcav = TCAV(splitter(model, tokenizer, 0, batch_size=3), target=1, positions=positions)
    direction = torch.randn(32, generator=torch.Generator().manual_seed(0))
    texts = TEXTS[:7]
    derivatives = tcav.directional_derivatives(texts, direction)
    # by hand: replace layer 0's output by a leaf, differentiate the logit, keep the non-padding positions
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    leaves = []

    def hook(module, args, output):
        leaves.append(output.detach().requires_grad_(True))
        return leaves[-1]

    handle = model.bert.encoder.layer[0].register_forward_hook(hook)
    try:
        logits = model(**batch).logits
    finally:
        handle.remove()
    (grads,) = torch.autograd.grad(logits[:, 1].sum(), leaves[0])
    mask = batch["attention_mask"]
    per_token = (grads @ direction) * mask
    lengths = mask.sum(dim=1)
    expected = {
        "sum": per_token.sum(dim=1),
        "first": per_token[:, 0],
        "last": per_token[torch.arange(len(texts)), lengths - 1],
    }[positions]
    assert_close_to_scale(derivatives, expected, scale=(grads.abs() @ direction.abs()).max(), fraction=1e-4)
    assert bool((expected != 0).all())


def test_gradient_direction_scores_one_and_the_opposite_zero(bert2):
    model, tokenizer = bert2
    split = splitter(model, tokenizer, 1)
    tcav = TCAV(split, target=1)
    v = head_direction(model)
    derivatives = tcav.directional_derivatives(TEXTS, v)
    # closed form at [CLS] (no other position reaches the head after the last layer)
    cls = split.get_activations(TEXTS, granularity="cls_token")["bert.encoder.layer.1"].activations
    pre = cls @ model.bert.pooler.dense.weight.detach().T + model.bert.pooler.dense.bias.detach()
    expected = ((1 - torch.tanh(pre) ** 2) * model.classifier.weight[1].detach() ** 2).sum(dim=1)
    assert_close_to_scale(derivatives, expected, fraction=1e-4)
    assert tcav.sign_count(derivatives) == 1.0 and tcav.magnitude(derivatives) == 1.0
    opposite = tcav.directional_derivatives(TEXTS, -v)
    assert tcav.sign_count(opposite) == 0.0 and tcav.magnitude(opposite) == 0.0
    first = TCAV(split, target=1, positions="first").directional_derivatives(TEXTS, v)
    assert_close_to_scale(first, derivatives, fraction=1e-4)


def planted_sets(model, tokenizer, seed: int):
    """Activations along the inputs' mean gradient direction (a planted concept) and a random pool."""
    tcav = TCAV(splitter(model, tokenizer, 1), target=1)
    gradients = tcav.gradients(TEXTS)
    mean = torch.nn.functional.normalize(gradients, dim=1).mean(dim=0)
    mean /= mean.norm()
    generator = torch.Generator().manual_seed(seed)
    concept = torch.randn(800, 32, generator=generator) + 3 * mean
    return tcav, concept, torch.randn(1600, 32, generator=generator), generator


def test_significance_separates_planted_concept_from_random_ones(bert2):
    tcav, concept, pool, generator = planted_sets(*bert2, seed=0)
    # 20 runs of 40 concept rows each: the random CAVs' sign counts are nearly 0 or 1 (this model's gradients
    # are within 0.8-0.98 cosine of their mean), so the test needs many runs to tell 1.0 from them
    result = tcav.score(TEXTS, concept, pool, n_runs=20, test_fraction=0.25, seed=0)
    # measured: every concept CAV scores 1.0; random CAVs spread over [0, 1]; p ~ 1e-5
    assert result.score == 1.0 and result.magnitude == 1.0
    assert result.p_value < 0.001 and result.significant and result.alpha == 0.05
    assert len(result.concept_scores) == len(result.random_scores) == 20
    # held out (10 + 10 rows): concept rows are 3 standard deviations off (Bayes accuracy Phi(1.5) = 0.93),
    # random vs random is chance; measured means 0.86 and 0.51
    assert sum(result.cav_accuracies) / 20 >= 0.8
    assert sum(result.random_cav_accuracies) / 20 < 0.65
    # random "concepts" (drawn like the pool) are not significant (measured p 0.37 and 0.80)
    for seed in range(2):
        random_concept = torch.randn(800, 32, generator=generator)
        null = tcav.score(TEXTS, random_concept, pool, n_runs=20, seed=seed)
        assert null.p_value > 0.05 and not null.significant, (seed, null.p_value)
    # random counter-sets given as a list: one run per set
    sets = [pool[k * 160 : (k + 1) * 160] for k in range(10)]
    listed = tcav.score(TEXTS, concept, sets, seed=1)
    assert (
        len(listed.concept_scores) == 10 and listed.score == 1.0 and listed.p_value < 0.05
    )  # measured 0.011


def test_tcav_leaves_the_model_unchanged_even_when_it_raises():
    model, tokenizer = tiny_bert_classifier(num_labels=2, seed=0)
    model.train()  # dropout on: TCAV must still run in eval mode and restore train mode
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    before = snapshot(model, tokenizer)
    split = splitter(model, tokenizer, 1)
    tcav = TCAV(split, target=1)
    first = tcav.gradients(TEXTS[:5])
    with torch.inference_mode():  # the caller's grad mode does not matter
        again = tcav.gradients(TEXTS[:5])
    assert torch.equal(first, again)
    assert_unchanged(before, snapshot(model, tokenizer))

    def failing(output, mask):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        TCAV(split, target=failing).gradients(TEXTS[:5])
    with pytest.raises(ValueError, match="one value per input"):
        TCAV(split, target=lambda output, mask: output.logits).gradients(TEXTS[:5])
    assert_unchanged(before, snapshot(model, tokenizer))
    assert all(p.grad is None for p in model.parameters())


def test_causal_lm_target_is_the_next_token_log_probability():
    model, tokenizer = tiny_llama(seed=0)
    split = splitter(model, tokenizer, 0, batch_size=2)
    texts = ["the cat sat", "a dog", "hello there my friend"]
    token = 7
    direction = torch.randn(model.config.hidden_size, generator=torch.Generator().manual_seed(1))
    derivatives = TCAV(split, target=token).directional_derivatives(texts, direction)

    def log_prob(output, mask):
        last = output.logits[torch.arange(len(mask)), mask.sum(dim=1) - 1]
        return last.log_softmax(dim=-1)[:, token]

    by_function = TCAV(split, target=log_prob).directional_derivatives(texts, direction)
    assert_close_to_scale(by_function, derivatives, fraction=1e-5)
    # central finite difference along v at every position of the split point
    name = split.split_points[0]
    acts = split.get_activations(texts, granularity="all_tokens")[name]
    lengths = torch.bincount(acts.input_indices)
    mask = (torch.arange(int(lengths.max()))[None] < lengths[:, None]).long()
    eps = 1e-2
    values = []
    for sign in (1, -1):
        shifted = Activations(acts.activations + sign * eps * direction, acts.index, name, "all_tokens")
        with torch.no_grad():
            values.append(log_prob(split.forward_from(name, shifted, texts), mask))
    finite = (values[0] - values[1]) / (2 * eps)
    assert_close_to_scale(derivatives, finite, fraction=1e-2)


def test_cav_direction_is_the_planted_direction():
    generator = torch.Generator().manual_seed(3)
    planted = torch.nn.functional.normalize(torch.randn(32, generator=generator), dim=0)
    concept = torch.randn(400, 32, generator=generator) + 3 * planted
    random = torch.randn(400, 32, generator=generator)
    # difference of means and nearest centroid: the unit difference of the two means, exactly
    mean_diff = torch.nn.functional.normalize(concept.mean(0) - random.mean(0), dim=0)
    for probe in (MeansDiffProbe(standardize=False), CentroidProbe(standardize=False)):
        assert_close_to_scale(CAV(probe).fit(concept, random).direction, mean_diff, fraction=1e-5)
    for probe in (LogisticRegressionProbe(), "linear_svm", LinearRegressionProbe()):
        cav = CAV(probe, test_fraction=0.25).fit(concept, random, seed=0)
        # measured: cos 0.97-0.99, held-out accuracy 0.93 (Bayes Phi(1.5) = 0.933)
        assert float(cav.direction @ planted) >= 0.95
        assert 0.88 <= cav.accuracy <= 1.0
        assert_close_to_scale(cav.direction.norm(), 1.0)


def test_tcav_errors_name_the_fix(bert2):
    model, tokenizer = bert2
    split = splitter(model, tokenizer, 1)
    with pytest.raises(ValueError, match="not among the model's split points"):
        TCAV(split, split_point=0).gradients(TEXTS[:2])
    with pytest.raises(ValueError, match="positions"):
        TCAV(split, positions="middle").gradients(TEXTS[:2])
    with pytest.raises(ValueError, match="split_concept=False"):
        TCAV(split).score(TEXTS[:2], torch.randn(5, 32), torch.randn(20, 32), n_runs=5)
    with pytest.raises(ValueError, match="hidden size is 32"):
        TCAV(split).directional_derivatives(TEXTS[:2], torch.ones(8))
    with pytest.raises(ValueError, match="not fitted"):
        TCAV(split).directional_derivatives(TEXTS[:2], CAV())
