"""GradientShap: equality with captum fed the same draws, completeness in expectation, batching, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import GradientShap as CaptumGradientShap
from captum.attr import NoiseTunnel

from interpreto.attribution.gradient_shap import GradientShap
from tests.conftest import scaled_head
from tests.tolerance import assert_close_to_scale

TEXT = "the movie was unbelievable, really great!"


def _embeddings(model, tokenizer, text):
    """Input embeddings `(seq, hidden)`, the text mask `(seq,)`, the [MASK] baseline and `rms(x)`."""
    ids = tokenizer(text, return_tensors="pt")["input_ids"][0]
    special = tokenizer.get_special_tokens_mask(ids.tolist(), already_has_special_tokens=True)
    text_mask = ~torch.tensor(special, dtype=torch.bool)
    table = model.get_input_embeddings()
    embeddings = table(ids).detach()
    baseline = torch.where(text_mask[:, None], table.weight[tokenizer.mask_token_id].detach(), embeddings)
    scale = embeddings[text_mask].square().mean().sqrt()
    return embeddings, text_mask, baseline, scale


def _noise(generator, n, embeddings, text_mask, sigma):
    return torch.randn((n, *embeddings.shape), generator=generator) * sigma * text_mask[None, :, None]


@pytest.mark.parametrize("baseline", [None, 0.0])
def test_gradient_shap_equals_captum_fed_the_same_draws(bert, monkeypatch, baseline):
    """captum draws baselines with `np.random.choice`, path points with `np.random.uniform` and input noise in
    `NoiseTunnel._add_noise_to_input`; patched to return our draws, its GradientShap must give our numbers."""
    model, tokenizer = bert
    model = scaled_head(model)
    n, seed, noise_std, baseline_std = 8, 5, 0.2, 0.3
    ours = GradientShap(
        model,
        tokenizer,
        n_perturbations=n,
        noise_std=noise_std,
        baseline=baseline,
        baseline_std=baseline_std,
        seed=seed,
        granularity="all_tokens",
        progress=False,
    )(TEXT, targets=1)[0]

    embeddings, text_mask, mask_baseline, scale = _embeddings(model, tokenizer, TEXT)
    if baseline is not None:
        mask_baseline = torch.where(text_mask[:, None], torch.full_like(embeddings, baseline), embeddings)
    generator = torch.Generator().manual_seed(seed)  # the documented draw order: eps, eta, alpha
    input_noise = _noise(generator, n, embeddings, text_mask, noise_std * scale)
    baselines = mask_baseline[None] + _noise(generator, n, embeddings, text_mask, baseline_std * scale)
    alphas = torch.rand(n, generator=generator)

    monkeypatch.setattr(np.random, "choice", lambda size, count: np.arange(count))
    monkeypatch.setattr(np.random, "uniform", lambda low, high, count: alphas.numpy())
    monkeypatch.setattr(
        NoiseTunnel,
        "_add_noise_to_input",
        staticmethod(lambda x, stdev, k: x.repeat_interleave(k, 0) + input_noise),
    )

    def forward(inputs_embeds):
        mask = torch.ones(inputs_embeds.shape[:2], dtype=torch.long)
        return model(inputs_embeds=inputs_embeds, attention_mask=mask).logits

    theirs = CaptumGradientShap(forward).attribute(
        embeddings[None], baselines=baselines, n_samples=n, stdevs=0.0, target=1
    )
    assert_close_to_scale(ours.attributions[0], theirs[0].sum(-1))
    assert (ours.attributions[0, ~text_mask] == 0).all()  # special tokens: x' - b = 0


@pytest.mark.parametrize(
    ("noise_std", "baseline_std"),
    [(0.0, 2.0), (1.0, 1.0)],
)
def test_gradient_shap_complete_in_expectation(bert, noise_std, baseline_std):
    """The mean over seeds of sum(attributions) converges to E f(x') - E f(b) (f(x) - E f(b) without input
    noise), both expectations computed here with 4,096 plain forward passes.

    Tolerance: each seed's sum is an independent estimate, so the mean of K = 48 of them is off by its
    standard error std / sqrt(K) (about 1 on a target near 50, measured), plus the Monte Carlo errors of the
    two expectations; we allow 4 standard errors (a 6e-5 chance of a false failure for a random set of seeds).
    With noise of one embedding scale on both ends the target (40.6) is far (> 10 standard errors) from the
    plain difference f(x) - f(b) (53.3), so the test tells the expectation from the endpoints.
    """
    model, tokenizer = bert
    model = scaled_head(model)
    embeddings, text_mask, baseline, scale = _embeddings(model, tokenizer, TEXT)
    generator = torch.Generator().manual_seed(12345)
    n_forward = 4096
    with torch.no_grad():
        noisy_baselines = baseline[None] + _noise(
            generator, n_forward, embeddings, text_mask, baseline_std * scale
        )
        noisy_inputs = embeddings[None] + _noise(
            generator, n_forward, embeddings, text_mask, noise_std * scale
        )
        f_baselines = model(inputs_embeds=noisy_baselines).logits[:, 1]
        f_inputs = model(inputs_embeds=noisy_inputs).logits[:, 1]
        plain = model(inputs_embeds=torch.stack([embeddings, baseline])).logits[:, 1]
    target = f_inputs.mean() - f_baselines.mean()

    n_seeds = 48
    sums = torch.stack(
        [
            GradientShap(
                model, tokenizer, n_perturbations=64, noise_std=noise_std, baseline_std=baseline_std, seed=seed,
                progress=False,
            )(TEXT, targets=1)[0].attributions.sum()
            for seed in range(n_seeds)
        ]
    )  # fmt: skip
    error = (sums.var() / n_seeds + f_baselines.var() / n_forward + f_inputs.var() / n_forward).sqrt()
    assert error < 0.05 * target.abs()  # the check is tight enough to mean something
    assert (sums.mean() - target).abs() <= 4 * error
    if noise_std > 0:
        assert (sums.mean() - (plain[0] - plain[1])).abs() > 4 * error


def test_gradient_shap_batch_size_does_not_change_results(bert):
    """Each chunk of rows is scored with its own draws' differences x' - b."""
    model, tokenizer = bert
    model = scaled_head(model)
    results = [
        GradientShap(model, tokenizer, n_perturbations=10, noise_std=0.1, batch_size=size, progress=False)(
            TEXT, targets=[0, 2]
        )[0].attributions
        for size in (3, 64)
    ]
    assert_close_to_scale(results[0], results[1])


def test_gradient_shap_seeded(bert):
    model, tokenizer = bert
    runs = [
        GradientShap(model, tokenizer, n_perturbations=6, seed=seed, progress=False)(TEXT)[0].attributions
        for seed in (1, 1, 2)
    ]
    assert torch.equal(runs[0], runs[1])
    assert not torch.allclose(runs[0], runs[2])


def test_gradient_shap_errors(bert):
    model, tokenizer = bert
    with pytest.raises(ValueError, match="baseline_std must be a non-negative number"):
        GradientShap(model, tokenizer, baseline_std=-0.1, progress=False)(TEXT)
    with pytest.raises(ValueError, match="noise_std must be a non-negative number"):
        GradientShap(model, tokenizer, noise_std=float("nan"), progress=False)(TEXT)
    with pytest.raises(ValueError, match=r"baseline must be a float or a tensor of shape \(32,\)"):
        GradientShap(model, tokenizer, baseline=torch.zeros(5), progress=False)(TEXT)
    with pytest.raises(TypeError, match="baseline must be None, a float or a tensor"):
        GradientShap(model, tokenizer, baseline="zero", progress=False)(TEXT)
