"""SmoothGrad, SquareGrad, VarGrad: equal to hand autograd with the same noise and to captum's NoiseTunnel fed
that noise; squares and variances taken on element scores; seeded; generation layout; planted marker."""

from __future__ import annotations

import pytest
import torch
from captum.attr import InputXGradient, NoiseTunnel

from interpreto.attribution.gradient_shap import GradientShap
from interpreto.attribution.smooth_grad import SmoothGrad
from interpreto.attribution.square_grad import SquareGrad
from interpreto.attribution.var_grad import VarGrad
from tests.conftest import assert_unchanged, scaled_head, snapshot
from tests.tolerance import assert_close_to_scale

TEXT = "the movie was unbelievable, really great!"
METHODS = [SmoothGrad, SquareGrad, VarGrad, GradientShap]


def _noisy_embeddings(model, tokenizer, text, n, noise_std, seed):
    """The noisy inputs the explainers draw: `N(0, (noise_std rms(x))^2)` at text positions, same generator."""
    encoding = tokenizer(text, return_tensors="pt")
    ids = encoding["input_ids"][0]
    special = tokenizer.get_special_tokens_mask(ids.tolist(), already_has_special_tokens=True)
    text_mask = ~torch.tensor(special, dtype=torch.bool)
    embeddings = model.get_input_embeddings()(ids).detach()
    sigma = noise_std * embeddings[text_mask].square().mean().sqrt()
    noise = torch.randn((n, *embeddings.shape), generator=torch.Generator().manual_seed(seed))
    return embeddings, embeddings[None] + noise * sigma * text_mask[None, :, None], encoding.word_ids()


def _forward(model):
    def forward(inputs_embeds):
        mask = torch.ones(inputs_embeds.shape[:2], dtype=torch.long)
        return model(inputs_embeds=inputs_embeds, attention_mask=mask).logits

    return forward


def test_noise_tunnel_equals_hand_autograd_word_level(bert):
    """Scores per draw are x' . grad f(x') summed over each word's tokens; then mean, mean square, variance."""
    model, tokenizer = bert
    model = scaled_head(model)
    n, noise_std, seed, targets = 6, 0.3, 3, [0, 2]
    kwargs = {"n_perturbations": n, "noise_std": noise_std, "seed": seed, "batch_size": 4, "progress": False}
    smooth, square, var = (
        method(model, tokenizer, **kwargs)(TEXT, targets=targets)[0] for method in METHODS[:3]
    )

    _, noisy, word_ids = _noisy_embeddings(model, tokenizer, TEXT, n, noise_std, seed)
    noisy.requires_grad_(True)
    logits = model(inputs_embeds=noisy).logits
    words = torch.zeros(len(word_ids), len(smooth.elements))
    for position, word in enumerate(word_ids):
        if word is not None:
            words[position, word] = 1.0
    per_draw = []  # (n, n_targets, n_words)
    for target in targets:
        (gradients,) = torch.autograd.grad(logits[:, target].sum(), noisy, retain_graph=True)
        per_draw.append((noisy * gradients).sum(-1).detach() @ words)
    per_draw = torch.stack(per_draw, dim=1)

    assert smooth.elements[3] == "unbelievable"  # three tokens: squares must be taken on their sum
    # squares and variances: their round-off is a fraction of the squares, not of the (smaller) variances
    squares = per_draw.square().mean(0)
    assert_close_to_scale(smooth.attributions, per_draw.mean(0))
    assert_close_to_scale(square.attributions, squares)
    assert_close_to_scale(var.attributions, per_draw.var(0, correction=0), scale=squares)
    assert_close_to_scale(var.attributions, square.attributions - smooth.attributions.square(), scale=squares)
    assert (square.attributions >= 0).all() and (var.attributions >= 0).all()
    assert (smooth.attributions < 0).any()  # signed


@pytest.mark.parametrize(
    ("method", "nt_type"), [(SmoothGrad, "smoothgrad"), (SquareGrad, "smoothgrad_sq"), (VarGrad, "vargrad")]
)
def test_noise_tunnel_equals_captum_fed_the_same_noise(bert, monkeypatch, method, nt_type):
    """captum's `NoiseTunnel(InputXGradient)` with its noise patched to ours. It squares each embedding
    coordinate's x_d g_d, we square each token's sum x . g: for `smoothgrad_sq` and `vargrad` captum gets an
    InputXGradient summed over the hidden dimension (broadcast back to the input's shape), which is our
    definition at token level; for `smoothgrad` (linear) plain InputXGradient, summed afterwards."""
    model, tokenizer = bert
    model = scaled_head(model)
    n, noise_std, seed = 8, 0.5, 11
    ours = method(
        model,
        tokenizer,
        n_perturbations=n,
        noise_std=noise_std,
        seed=seed,
        granularity="all_tokens",
        progress=False,
    )(TEXT, targets=1)[0]

    embeddings, noisy, _ = _noisy_embeddings(model, tokenizer, TEXT, n, noise_std, seed)
    monkeypatch.setattr(NoiseTunnel, "_add_noise_to_input", staticmethod(lambda x, stdev, k: noisy.clone()))

    class TokenInputXGradient(InputXGradient):
        def attribute(self, inputs, target=None, additional_forward_args=None):
            scores = InputXGradient.attribute.__wrapped__(self, inputs, target, additional_forward_args)
            return scores.sum(-1, keepdim=True).expand_as(scores).contiguous()

        attribute.__wrapped__ = attribute  # NoiseTunnel calls `attribute.__wrapped__`

    inner = InputXGradient if nt_type == "smoothgrad" else TokenInputXGradient
    theirs = NoiseTunnel(inner(_forward(model))).attribute(
        embeddings[None], nt_type=nt_type, nt_samples=n, stdevs=1.0, target=1
    )
    expected = theirs[0].sum(-1) if nt_type == "smoothgrad" else theirs[0, :, 0]
    assert_close_to_scale(ours.attributions[0], expected)


def test_zero_noise_gives_input_x_gradient_closed_forms(bert):
    """Without noise every draw is the input: SmoothGrad = InputXGradient, SquareGrad = its square, VarGrad = 0."""
    from interpreto import InputXGradient as OurInputXGradient

    model, tokenizer = bert
    model = scaled_head(model)
    reference = OurInputXGradient(model, tokenizer, progress=False)(TEXT, targets=2)[0].attributions
    results = [
        method(model, tokenizer, n_perturbations=3, noise_std=0.0, progress=False)(TEXT, targets=2)[
            0
        ].attributions
        for method in METHODS[:3]
    ]
    assert_close_to_scale(results[0], reference)
    assert_close_to_scale(results[1], reference.square())
    assert results[2].abs().max() < 1e-3 * reference.square().max()


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_numbers_and_batch_size_invariance(bert, method):
    model, tokenizer = bert
    model = scaled_head(model)

    def run(seed, batch_size):
        explainer = method(
            model, tokenizer, n_perturbations=7, seed=seed, batch_size=batch_size, progress=False
        )
        return explainer(TEXT, targets=[0, 1])[0].attributions

    first = run(seed=4, batch_size=64)
    assert torch.equal(first, run(seed=4, batch_size=64))
    assert_close_to_scale(first, run(seed=4, batch_size=2))
    assert not torch.allclose(first, run(seed=5, batch_size=64))


def test_smooth_grad_generation_equals_hand_autograd(gpt2):
    """One row per continuation token: mean over draws of x' . grad log p(token_j | x'), NaN at and after j."""
    model, tokenizer = gpt2
    prompt, continuation = "the cat sat on the mat", " and the dog"
    n, noise_std, seed = 5, 0.2, 1
    out = SmoothGrad(model, tokenizer, n_perturbations=n, noise_std=noise_std, seed=seed, granularity="token",
                     progress=False)(prompt, continuation)[0]  # fmt: skip
    prompt_ids = tokenizer(prompt)["input_ids"]
    target_ids = tokenizer(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor(prompt_ids + target_ids[:-1])
    # GPT-2 has no special token: every position is text
    embeddings = model.get_input_embeddings()(ids).detach()
    sigma = noise_std * embeddings.square().mean().sqrt()
    noise = torch.randn((n, *embeddings.shape), generator=torch.Generator().manual_seed(seed))
    noisy = (embeddings[None] + noise * sigma).requires_grad_(True)
    log_probs = model(inputs_embeds=noisy).logits.log_softmax(-1)
    n_prompt = len(prompt_ids)
    # elements: the prompt's tokens, then every continuation token (the last one is fed to no row)
    assert out.attributions.shape == (len(target_ids), n_prompt + len(target_ids))
    for j, token in enumerate(target_ids):
        (gradients,) = torch.autograd.grad(
            log_probs[:, n_prompt - 1 + j, token].sum(), noisy, retain_graph=True
        )
        expected = (noisy * gradients).sum(-1).mean(0).detach()
        assert_close_to_scale(out.attributions[j, : n_prompt + j], expected[: n_prompt + j])
        assert torch.isnan(out.attributions[j, n_prompt + j :]).all()


@pytest.mark.parametrize("method", METHODS)
def test_generation_layout_and_signs(gpt2, method):
    model, tokenizer = gpt2
    out = method(model, tokenizer, n_perturbations=4, granularity="token", progress=False)(
        "the cat sat on the mat", " and the dog ran"
    )[0]
    prompt = out.n_prompt_elements
    assert out.attributions.shape[0] == len(out.targets)
    for j in range(len(out.targets)):
        assert torch.isfinite(out.attributions[j, : prompt + j]).all()
        assert torch.isnan(out.attributions[j, prompt + j :]).all()
    if method in (SquareGrad, VarGrad):
        assert (out.attributions.nan_to_num(0.0) >= 0).all()


@pytest.mark.parametrize("method", METHODS)
def test_marker_word_gets_top_attribution(planted, method):
    from interpreto.zoo.planted import planted_sentences

    model, tokenizer = planted
    rows = planted_sentences(40, seed=123)
    outputs = method(model, tokenizer, progress=False)([text for text, _, _ in rows])
    hits = sum(
        int(out.attributions[0].argmax()) == marker for out, (_, _, marker) in zip(outputs, rows, strict=True)
    )
    assert hits == len(rows)


@pytest.mark.parametrize("method", [SmoothGrad, GradientShap])
def test_signed_methods_show_evidence_against(planted, method):
    model, tokenizer = planted
    out = method(model, tokenizer, progress=False)("the awful movie", targets="positive")[0]
    assert out.elements[int(out.attributions[0].argmin())] == "awful"
    assert out.attributions[0, 1] < 0


@pytest.mark.parametrize("method", METHODS)
def test_model_and_tokenizer_unchanged(bert, method):
    model, tokenizer = bert
    model.train()
    before = snapshot(model, tokenizer)
    method(model, tokenizer, n_perturbations=3, progress=False)(TEXT, targets=[0, 1])
    assert_unchanged(before, snapshot(model, tokenizer))
    model.eval()


def test_errors_name_the_argument(bert):
    model, tokenizer = bert
    with pytest.raises(ValueError, match="n_perturbations must be a positive integer, got 0"):
        SmoothGrad(model, tokenizer, n_perturbations=0, progress=False)(TEXT)
    with pytest.raises(ValueError, match="n_perturbations must be an integer of at least 2, got 1"):
        VarGrad(model, tokenizer, n_perturbations=1, progress=False)(TEXT)
    with pytest.raises(ValueError, match=r"noise_std must be a non-negative number \(a fraction"):
        SquareGrad(model, tokenizer, noise_std=-0.5, progress=False)(TEXT)
    with pytest.raises(ValueError, match="seed must be an integer"):
        SmoothGrad(model, tokenizer, seed=1.5, progress=False)(TEXT)
