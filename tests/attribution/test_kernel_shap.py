"""KernelShap: exact Shapley values when all coalitions fit, lower error than captum at equal budget, exact
efficiency, the additive model's effects, sampling design, determinism."""

from __future__ import annotations

import math

import pytest
import torch
from captum.attr import KernelShap as CaptumKernelShap
from captum.attr import ShapleyValues

from interpreto.attribution.integrated_gradients import IntegratedGradients
from interpreto.attribution.kernel_shap import KernelShap, coalitions, size_mass
from interpreto.attribution.occlusion import Occlusion
from interpreto.model.running import element_matrix
from interpreto.zoo.additive import additive_classifier
from tests.attribution.shapley_reference import all_coalitions, exact_shapley, shapley_from_values
from tests.conftest import scaled_head
from tests.tolerance import assert_close_to_scale, magnitude

EIGHT_WORDS = "the movie was really great but the end"
TWELVE_WORDS = "the movie was really great but the end felt long and boring"
EFFECTS = {"great": 2.0, "awful": -3.0, "fine": 0.5}


def _logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids, token_type_ids=torch.zeros_like(ids)).logits


def _fully_masked(tokenizer, text: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The input ids of `text` and the same ids with every non-special token replaced by [MASK]."""
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    special = torch.tensor(
        tokenizer.get_special_tokens_mask(ids[0].tolist(), already_has_special_tokens=True)
    )
    return ids, torch.where(special.bool(), ids[0], tokenizer.mask_token_id)[None]


def test_shapley_reference_matches_captum_permutations(bert):
    """The 2^n enumerator equals captum's ShapleyValues (all n! orders) on a 4-word input."""
    model, tokenizer = bert
    model = scaled_head(model)
    text = "the movie was great"
    explainer = KernelShap(model, tokenizer, progress=False)
    exact, sample, scores = exact_shapley(explainer, text, 2)
    matrix = element_matrix(sample)

    def forward(present):
        removed = (1 - present) @ matrix.T > 0
        return _logits(model, sample.input_ids.masked_fill(removed, tokenizer.mask_token_id))[:, 2]

    expected = ShapleyValues(forward).attribute(torch.ones(1, 4), baselines=torch.zeros(1, 4))
    # Shapley values are sums of differences of scores: their round-off is a fraction of the scores
    assert_close_to_scale(exact[0], expected[0], scale=scores)
    # and a game with a closed form: v(S) = 1 if players 0 and 1 are both present -> 1/2, 1/2, 0
    values = all_coalitions(3)[:, :2].all(1).double()[:, None]
    torch.testing.assert_close(
        shapley_from_values(values, 3)[0], torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64)
    )


def test_kernel_shap_equals_exact_shapley_values_classifier(bert):
    model, tokenizer = bert
    model = scaled_head(model)
    explainer = KernelShap(model, tokenizer, n_perturbations=2**8 - 2, progress=False)
    exact, _, scores = exact_shapley(explainer, EIGHT_WORDS, [0, 2])
    out = explainer(EIGHT_WORDS, [0, 2])[0]
    assert len(out.elements) == 8
    assert exact.abs().max() > 1.0  # a non-trivial game
    assert_close_to_scale(out.attributions, exact, scale=scores)


@pytest.mark.parametrize("fixture", ["gpt2", "llama"])
def test_kernel_shap_equals_exact_shapley_values_generation(fixture, request):
    """Each target is its own game over the elements it can see; the shared rows enumerate them all."""
    model, tokenizer = request.getfixturevalue(fixture)
    prompt, continuation = "the cat sat on the", " mat and the"
    explainer = KernelShap(model, tokenizer, progress=False)
    exact, sample, scores = exact_shapley(explainer, prompt, continuation)
    out = explainer(prompt, continuation)[0]
    visible = sample.visible
    assert sample.n_targets >= 3 and sample.n_elements <= 10
    assert torch.isnan(out.attributions[~visible]).all()
    assert_close_to_scale(exact[~visible], torch.zeros_like(exact[~visible]), scale=scores)  # dummy players
    assert_close_to_scale(out.attributions[visible], exact[visible], scale=scores)


def test_kernel_shap_error_lower_than_captum_at_equal_budget(bert):
    """12 words (4,094 coalitions), 512 and 2,048 model rows each: relative L2 error against exact values.

    Same game for both: captum perturbs a presence vector over the words whose zeros become [MASK] tokens;
    its `n_samples` counts the input and the all-baseline row, so both make `budget + 2` model rows.
    """
    model, tokenizer = bert
    model = scaled_head(model)
    exact, sample, _ = exact_shapley(KernelShap(model, tokenizer, progress=False), TWELVE_WORDS, 1)
    exact = exact[0].float()
    matrix = element_matrix(sample)
    n = sample.n_elements
    assert n == 12

    def forward(present):
        removed = (1 - present.float()) @ matrix.T > 0
        return _logits(model, sample.input_ids.masked_fill(removed, tokenizer.mask_token_id))[:, 1]

    def error(values):
        return float((values - exact).norm() / exact.norm())

    for budget in (512, 2048):
        for seed in (0, 1):
            ours = KernelShap(model, tokenizer, n_perturbations=budget, seed=seed, progress=False)
            ours_error = error(ours(TWELVE_WORDS, 1)[0].attributions[0])
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                theirs = CaptumKernelShap(forward).attribute(
                    torch.ones(1, n),
                    baselines=torch.zeros(1, n),
                    n_samples=budget + 2,
                    perturbations_per_eval=256,
                )[0]
            print(
                f"budget {budget} seed {seed}: relative L2 error ours {ours_error:.4f}, captum {error(theirs):.4f}"
            )
            assert ours_error < error(theirs)


def test_kernel_shap_equals_effects_on_additive_model():
    """An additive game: any set of coalitions that identifies the regression gives the effects exactly."""
    model, tokenizer = additive_classifier(EFFECTS, bias=0.3)
    words = "the great movie was awful but fine".split() * 3
    out = KernelShap(model, tokenizer, n_perturbations=300, progress=False)(" ".join(words), "positive")[0]
    expected = torch.tensor([EFFECTS.get(word, 0.0) for word in words])
    assert out.elements == words
    assert_close_to_scale(out.attributions[0], expected)


def test_additive_model_closed_forms():
    """The additive model's documented closed forms: exact Shapley values, occlusion and IG equal the effects
    (a word made of pieces carries its pieces' effects: "greatest" is great ##est)."""
    model, tokenizer = additive_classifier(EFFECTS, bias=-0.7)
    text = "a great film, awful but fine and greatest"
    explainer = Occlusion(model, tokenizer, progress=False)
    exact, sample, values = exact_shapley(explainer, text, ["positive", "negative"])
    effects = torch.tensor([EFFECTS.get(label, 0.0) for label in sample.elements.labels])
    effects[-1] = EFFECTS["great"]
    expected = torch.stack([effects, -effects]).double()
    assert_close_to_scale(exact, expected, scale=values)
    assert_close_to_scale(values[-1] - values[0], expected.sum(-1), scale=values)  # f(x) - f(empty)
    assert_close_to_scale(values[0], torch.tensor([-0.7, 0.7]))
    for method in (explainer, IntegratedGradients(model, tokenizer, n_perturbations=4, progress=False)):
        out = method(text, ["positive", "negative"])[0]
        assert_close_to_scale(out.attributions, expected, scale=values)


def test_kernel_shap_same_seed_same_values_and_exact_efficiency(bert):
    model, tokenizer = bert
    model = scaled_head(model)
    first, again, other = (
        KernelShap(model, tokenizer, n_perturbations=200, seed=seed, progress=False)(TWELVE_WORDS, [0, 1])[0]
        for seed in (0, 0, 1)
    )
    assert torch.equal(first.attributions, again.attributions)
    assert not torch.allclose(first.attributions, other.attributions, atol=1e-3)
    ids, masked = _fully_masked(tokenizer, TWELVE_WORDS)
    full, empty = _logits(model, ids)[0, [0, 1]], _logits(model, masked)[0, [0, 1]]
    expected = full - empty  # f(x) - f(all replaced), by hand
    for out in (first, other):
        assert_close_to_scale(out.attributions.sum(-1), expected, scale=magnitude(full, empty))
        # efficiency is enforced exactly: only the float32 rounding of the sum of attributions is left
        delta = out.convergence_delta
        assert_close_to_scale(
            delta, torch.zeros_like(delta), scale=out.attributions.abs().sum(-1), fraction=1e-5
        )


def test_kernel_shap_one_and_two_elements(bert):
    model, tokenizer = bert
    model = scaled_head(model)
    ids, masked = _fully_masked(tokenizer, "great")
    out = KernelShap(model, tokenizer, progress=False)("great", [0, 1, 2])[0]
    # the input is scored within the perturbed rows' batch: float32 batch-vs-single noise on logits of ~10
    full, empty = _logits(model, ids)[0], _logits(model, masked)[0]
    assert_close_to_scale(out.attributions[:, 0], full - empty, scale=magnitude(full, empty))
    # two players: phi_1 = (v(1) - v(0) + v(12) - v(2)) / 2, from four hand-made inputs
    ids = tokenizer("great movie", return_tensors="pt")["input_ids"]
    mask = tokenizer.mask_token_id
    both, first, second, none = (ids.clone() for _ in range(4))
    first[0, 2] = second[0, 1] = none[0, 1] = none[0, 2] = mask
    v = {
        name: _logits(model, row)[0] for name, row in [("12", both), ("1", first), ("2", second), ("", none)]
    }
    expected = torch.stack([v["1"] - v[""] + v["12"] - v["2"], v["2"] - v[""] + v["12"] - v["1"]], 1) / 2
    out = KernelShap(model, tokenizer, progress=False)("great movie", [0, 1, 2])[0]
    scale = magnitude(*v.values())
    assert_close_to_scale(out.attributions, expected, scale=scale)
    # a budget of one coalition cannot identify both values: no error, and efficiency still holds
    one = KernelShap(model, tokenizer, n_perturbations=1, progress=False)("great movie", [0, 1, 2])[0]
    assert_close_to_scale(one.attributions.sum(-1), expected.sum(-1), scale=scale)


def test_coalitions_enumerate_extreme_sizes_and_pair_the_rest():
    generator = torch.Generator().manual_seed(0)
    everything = coalitions(5, 30, generator)
    assert len({tuple(row.tolist()) for row in everything}) == 30  # all 2^5 - 2, each once
    rows = coalitions(12, 2048, generator)
    assert rows.shape == (2048, 12)
    sizes = rows.sum(1)
    # 2048 rows cover sizes 1, 2, 3 and their complements (596 coalitions) at least as well as sampling would:
    # they come first, complete, each coalition once
    enumerated = (sizes <= 3) | (sizes >= 9)
    for size in (1, 2, 3, 9, 10, 11):
        distinct = {tuple(row.tolist()) for row in rows[sizes == size]}
        assert len(distinct) == (sizes == size).sum() == math.comb(12, size)
    assert enumerated[:596].all() and not enumerated[596:].any()
    # the rest comes in complementary pairs
    assert torch.equal(rows[596::2], ~rows[597::2])
    # with sizes drawn proportionally to the kernel mass (n - 1) / (s (n - s)) of the sizes not enumerated
    rows = coalitions(40, 40_000, generator)
    sizes = rows.sum(1)
    n_enumerated = 2 * (40 + math.comb(40, 2))  # sizes 1, 2, 38, 39
    assert ((sizes[:n_enumerated] <= 2) | (sizes[:n_enumerated] >= 38)).all()
    counts = torch.bincount(sizes[n_enumerated::2], minlength=41)[3:38].double()
    mass = size_mass(40)[2:37]
    expected = counts.sum() * mass / mass.sum()
    assert ((counts - expected).abs() <= 4 * expected.sqrt()).all()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [({"n_perturbations": 0}, "n_perturbations must be a positive integer"), ({"seed": 1.5}, "seed must be")],
)
def test_kernel_shap_parameter_errors(bert, arguments, message):
    model, tokenizer = bert
    with pytest.raises(ValueError, match=message):
        KernelShap(model, tokenizer, progress=False, **arguments)("the movie")
