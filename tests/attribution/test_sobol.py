"""Sobol: the estimator against the Ishigami function's analytic indices, the explainer against exact indices of
binary element variables (all 2^n masks enumerated), the planted marker, determinism, generation, row count."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from interpreto.attribution.sobol import (
    Sobol,
    first_order_indices,
    mixed_matrices,
    sobol_design,
    total_indices,
)
from tests.conftest import scaled_head
from tests.tolerance import assert_close_to_scale

# --- the estimator -------------------------------------------------------------------------------------------


def _ishigami_indices(a: float = 7.0, b: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Analytic first-order and total indices of f = sin x1 + a sin^2 x2 + b x3^4 sin x1, x ~ U[-pi, pi]^3."""
    v1 = 0.5 * (1 + b * math.pi**4 / 5) ** 2
    v2 = a**2 / 8
    v13 = b**2 * math.pi**8 * 8 / 225
    variance = v1 + v2 + v13
    first = torch.tensor([v1, v2, 0.0], dtype=torch.float64) / variance
    total = torch.tensor([v1 + v13, v2, v13], dtype=torch.float64) / variance
    return first, total


def _ishigami(u: torch.Tensor, a: float = 7.0, b: float = 0.1) -> torch.Tensor:
    x = -math.pi + 2 * math.pi * u
    return torch.sin(x[..., 0]) + a * torch.sin(x[..., 1]) ** 2 + b * x[..., 2] ** 4 * torch.sin(x[..., 0])


def test_ishigami_analytic_values():
    first, total = _ishigami_indices()
    torch.testing.assert_close(
        first, torch.tensor([0.3139, 0.4424, 0.0], dtype=torch.float64), atol=1e-4, rtol=0
    )
    torch.testing.assert_close(
        total, torch.tensor([0.5576, 0.4424, 0.2437], dtype=torch.float64), atol=1e-4, rtol=0
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_estimator_matches_ishigami_indices_at_8192_samples(seed):
    """|error| < 0.01 with 2^13 base samples (largest error over seeds 0-99: 0.0072 first-order, 0.0042 total)."""
    a, b = sobol_design(2**13, 3, torch.Generator().manual_seed(seed))
    f_a, f_b, f_ab = _ishigami(a), _ishigami(b), _ishigami(mixed_matrices(a, b))
    first, total = _ishigami_indices()
    assert (first_order_indices(f_a, f_b, f_ab) - first).abs().max() < 0.01
    assert (total_indices(f_a, f_b, f_ab) - total).abs().max() < 0.01


def test_design_is_seeded_by_the_generator():
    first = sobol_design(64, 5, torch.Generator().manual_seed(3))
    again = sobol_design(64, 5, torch.Generator().manual_seed(3))
    other = sobol_design(64, 5, torch.Generator().manual_seed(4))
    assert all(torch.equal(x, y) for x, y in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])
    assert first[0].shape == first[1].shape == (64, 5)
    assert not torch.equal(first[0], first[1])


def test_mixed_matrices_take_one_column_from_b():
    a, b = torch.zeros(4, 3), torch.ones(4, 3)
    mixed = mixed_matrices(a, b)
    for i in range(3):
        expected = torch.zeros(4, 3)
        expected[:, i] = 1
        assert torch.equal(mixed[i], expected)


def test_constant_output_gives_zero_indices():
    f = torch.ones(8, 2)
    assert torch.equal(total_indices(f, f, f[None].repeat(3, 1, 1)), torch.zeros(3, 2, dtype=f.dtype))
    assert torch.equal(first_order_indices(f, f, f[None].repeat(3, 1, 1)), torch.zeros(3, 2, dtype=f.dtype))


# --- exact indices of binary variables -----------------------------------------------------------------------


def _exact_binary_indices(scores: torch.Tensor, n: int, p: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """First-order and total indices `(n_targets, n)` of independent Bernoulli(p) variables (1 = kept), from the
    scores `(2^n, n_targets)` of all keep patterns in `itertools.product([0, 1], repeat=n)` order.

    V_i = p (1 - p) E[f(x_i=1) - f(x_i=0)]^2 and V_Ti = p (1 - p) E[(f(x_i=1) - f(x_i=0))^2], E over the others.
    """
    scores = scores.double()
    kept = torch.tensor(list(itertools.product([0, 1], repeat=n)), dtype=torch.bool)
    weights = torch.where(kept, p, 1 - p).double().prod(1)
    mean = weights @ scores
    variance = weights @ scores.square() - mean.square()
    first, total = [], []
    for i in range(n):
        on = torch.nonzero(kept[:, i]).squeeze(1)
        off = on - 2 ** (n - 1 - i)  # the same pattern with element i removed
        others = weights[on] / p
        difference = scores[on] - scores[off]
        first.append(p * (1 - p) * (others @ difference).square() / variance)
        total.append(p * (1 - p) * (others @ difference.square()) / variance)
    return torch.stack(first, 1), torch.stack(total, 1)


def _all_masked_scores(model, input_ids: torch.Tensor, groups: list[list[int]], replacement: int):
    """Model outputs for every keep pattern of the elements whose token positions are `groups`."""
    kept = torch.tensor(list(itertools.product([0, 1], repeat=len(groups))), dtype=torch.bool)
    rows = input_ids.repeat(len(kept), 1)
    for element, positions in enumerate(groups):
        rows[:, positions] = torch.where(kept[:, element : element + 1], rows[:, positions], replacement)
    with torch.no_grad():
        return model(input_ids=rows).logits


@pytest.mark.parametrize("index", ["total", "first"])
def test_two_words_equal_exact_indices(bert, index):
    """Two words: the four masks' scores give the indices by hand; the design of 32 rows is balanced enough
    for the estimator to reproduce them."""
    model, tokenizer = bert
    model = scaled_head(model)
    out = Sobol(model, tokenizer, index=index, progress=False)("good movie", targets=[0, 1, 2])[0]
    ids = tokenizer("good movie", return_tensors="pt")["input_ids"][0]
    logits = _all_masked_scores(model, ids, [[1], [2]], tokenizer.mask_token_id)
    first, total = _exact_binary_indices(logits, 2)
    expected = total if index == "total" else first
    assert out.elements == ["good", "movie"]
    assert_close_to_scale(out.attributions, expected)
    assert_close_to_scale(out.scores, logits[-1])


def test_seven_words_close_to_exact_indices(planted):
    """Seven words: the default design (64 rows) against the 128-mask enumeration (measured error 0.016)."""
    model, tokenizer = planted
    text = "old water city picture in awful room"
    out = Sobol(model, tokenizer, progress=False)(text, targets=[0, 1])[0]
    ids = tokenizer(text, return_tensors="pt")["input_ids"][0]
    _, total = _exact_binary_indices(
        _all_masked_scores(model, ids, [[i] for i in range(1, 8)], tokenizer.mask_token_id), 7
    )
    assert (out.attributions - total.float()).abs().max() < 0.03
    assert int(out.attributions[0].argmax()) == 5


def test_planted_marker_has_the_largest_total_index_near_the_whole_variance(planted):
    """40 sentences: the marker's total index is the largest in all, at least 0.85 of the variance (measured:
    min 0.89, mean 0.98), and no other word above 0.1 (measured max 0.05)."""
    from interpreto.zoo.planted import planted_sentences

    model, tokenizer = planted
    rows = planted_sentences(40, seed=123)
    outputs = Sobol(model, tokenizer, progress=False)([text for text, _, _ in rows])
    for out, (_, label, marker_index) in zip(outputs, rows, strict=True):
        assert out.targets == [label]
        indices = out.attributions[0]
        assert int(indices.argmax()) == marker_index
        assert indices[marker_index] >= 0.85
        assert torch.cat([indices[:marker_index], indices[marker_index + 1 :]]).max() < 0.1


# --- the explainer -------------------------------------------------------------------------------------------


def test_same_seed_same_indices_other_seed_other_indices(planted):
    model, tokenizer = planted
    text = "green window evening train a my awful has old the cat"
    first = Sobol(model, tokenizer, seed=1, progress=False)(text)[0].attributions
    again = Sobol(model, tokenizer, seed=1, progress=False)(text)[0].attributions
    other = Sobol(model, tokenizer, seed=2, progress=False)(text)[0].attributions
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_each_distinct_row_runs_once(planted):
    """The model sees the input and each distinct mask once: far fewer rows than N (n + 2)."""
    model, tokenizer = planted
    text = "the cat is great near the old tree"  # 8 words: N = 64 by default
    explainer = Sobol(model, tokenizer, batch_size=1000, progress=False)
    rows = []

    def count(module, args, kwargs):
        rows.append(kwargs["input_ids"].shape[0])

    handle = model.register_forward_pre_hook(count, with_kwargs=True)
    try:
        explainer(text, targets=1)  # a given target: no forward pass to find the predicted class
    finally:
        handle.remove()
    from interpreto.model.task import make_task

    sample = make_task(model, tokenizer).prepare(text, None, explainer._granularity())[0]
    masks = explainer.masks(sample, explainer.generator())
    assert masks.shape == (64 * (8 + 2), 8)
    n_distinct = torch.unique(masks, dim=0).shape[0]
    assert sum(rows) == 1 + n_distinct
    assert n_distinct < 0.6 * masks.shape[0]


def test_generation_rows_equal_exact_indices_per_continuation_token(gpt2):
    """Tiny GPT-2: one row of indices per continuation token, each equal to the exact indices of the elements
    before it; elements at or after the scored token are NaN."""
    model, tokenizer = gpt2
    prompt, continuation = "the cat", " the dog"  # tokens: t he | Ġc at || Ġthe Ġdog
    out = Sobol(model, tokenizer, progress=False)(prompt, continuation)[0]
    prompt_ids = tokenizer(prompt)["input_ids"]
    target_ids = tokenizer(continuation, add_special_tokens=False)["input_ids"]
    assert out.targets == target_ids and len(prompt_ids) == 4 and len(target_ids) == 2
    ids = torch.tensor(prompt_ids + target_ids[:1])
    groups = [[0, 1], [2, 3], [4]]  # "the", "cat", " the"; " dog" is never fed
    space = tokenizer(" ", add_special_tokens=False)["input_ids"][0]  # GPT-2: no mask token, a space token
    logits = _all_masked_scores(model, ids, groups, space)
    log_probs = logits[:, -2:].log_softmax(-1)[:, [0, 1], target_ids]
    _, total = _exact_binary_indices(log_probs, 3)
    assert out.elements == ["the", "cat", " the", " dog"]
    nan = math.nan
    expected = torch.tensor(
        [[total[0, 0], total[0, 1], nan, nan], [total[1, 0], total[1, 1], total[1, 2], nan]]
    )
    assert_close_to_scale(out.attributions, expected, equal_nan=True)


def test_too_few_perturbations_warn_and_name_the_fix(planted):
    model, tokenizer = planted
    with pytest.warns(
        UserWarning, match=r"n_perturbations=16 is too few for 8 elements.*n_perturbations=None"
    ):
        Sobol(model, tokenizer, n_perturbations=16, progress=False)("the cat is great near the old tree")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_perturbations": 1}, "n_perturbations must be None or an integer of at least 2"),
        ({"n_perturbations": 32.0}, "n_perturbations must be None or an integer"),
        ({"index": "second"}, r"index='second' is unknown: use one of \['total', 'first'\]"),
        ({"keep_probability": 1.0}, "keep_probability must be a number strictly between 0 and 1"),
        ({"seed": "0"}, "seed must be an integer"),
    ],
)
def test_bad_parameters_raise_at_call_time(bert, kwargs, message):
    model, tokenizer = bert
    explainer = Sobol(model, tokenizer, progress=False, **kwargs)  # stored as given, no error yet
    with pytest.raises(ValueError, match=message):
        explainer("a good movie")
