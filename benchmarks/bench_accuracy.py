"""Accuracy at equal budget: KernelSHAP against exact Shapley values, IG's completeness residual, ours and captum.

- KernelSHAP: relative L2 error against the exact Shapley values (all 2^n word coalitions enumerated) of the
  zoo sentiment classifier's predicted-class logit, at 64 / 256 / 1024 model rows, for ours and captum's
  `KernelShap` on the same game (words replaced by [MASK]), several seeds.
- IntegratedGradients: |convergence delta| (sum of attributions minus f(x) - f(baseline)) at 8 / 16 / 32 / 64
  steps, ours and captum's `LayerIntegratedGradients` (Gauss-Legendre, [MASK] baseline), on held-out tweets.

Prints tables and writes `benchmarks/results/accuracy.json`. Run with `python benchmarks/bench_accuracy.py`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
from captum.attr import KernelShap as CaptumKernelShap
from captum.attr import LayerIntegratedGradients

from interpreto import Granularity, IntegratedGradients, KernelShap
from interpreto.model.running import element_matrix
from interpreto.model.task import make_task
from interpreto.zoo import sentiment_classifier
from interpreto.zoo.sentiment import balanced_tweet_split

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.attribution.shapley_reference import exact_shapley  # noqa: E402

BUDGETS = (64, 256, 1024)
STEPS = (8, 16, 32, 64)


def tweets_with_words(model, tokenizer, n_words: int, count: int) -> list[str]:
    """Held-out tweets of exactly `n_words` elements at word granularity, as the explainers split them (the
    enumeration costs 2^n rows; punctuation, hashtags and links count as words)."""
    _, test = balanced_tweet_split()
    task = make_task(model, tokenizer)
    found = []
    for text, _ in test:
        if (
            abs(len(text.split()) - n_words) <= 3
            and task.prepare(text, 0, Granularity.WORD)[0].n_elements == n_words
        ):
            found.append(text)
            if len(found) == count:
                break
    return found


def logits(model, input_ids: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits


def kernel_shap_errors(model, tokenizer, text: str, seeds: int) -> dict:
    """Relative L2 errors of ours and captum at each budget, for one text (predicted class)."""
    target = int(logits(model, tokenizer(text, return_tensors="pt").input_ids).argmax())
    exact, sample, _ = exact_shapley(KernelShap(model, tokenizer, progress=False), text, target)
    exact = exact[0].float()
    matrix = element_matrix(sample)

    def game(present: torch.Tensor) -> torch.Tensor:
        removed = (1 - present.float()) @ matrix.T > 0
        return logits(model, sample.input_ids.masked_fill(removed, tokenizer.mask_token_id))[:, target]

    def error(values: torch.Tensor) -> float:
        return float((values.float() - exact).norm() / exact.norm())

    rows = {}
    for budget in BUDGETS:
        ours, theirs = [], []
        for seed in range(seeds):
            explainer = KernelShap(model, tokenizer, n_perturbations=budget, seed=seed, progress=False)
            ours.append(error(explainer(text, target)[0].attributions[0]))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                captum = CaptumKernelShap(game).attribute(
                    torch.ones(1, sample.n_elements),
                    baselines=torch.zeros(1, sample.n_elements),
                    n_samples=budget + 2,  # captum counts the input and the baseline rows; ours adds them
                    perturbations_per_eval=256,
                )[0]
            theirs.append(error(captum))
        rows[budget] = {"ours": statistics.mean(ours), "captum": statistics.mean(theirs)}
    return {"n_words": sample.n_elements, "errors": rows}


def ig_deltas(model, tokenizer, text: str) -> dict:
    """|convergence delta| of ours and captum at each step count, for one text (predicted class)."""
    ids = tokenizer(text, return_tensors="pt").input_ids
    target = int(logits(model, ids).argmax())
    special = torch.tensor(
        tokenizer.get_special_tokens_mask(ids[0].tolist(), already_has_special_tokens=True)
    )
    baseline_ids = ids.masked_fill(special[None] == 0, tokenizer.mask_token_id)
    forward = lambda input_ids: model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits  # noqa: E731
    layer_ig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    rows = {}
    for steps in STEPS:
        ours = IntegratedGradients(
            model, tokenizer, n_perturbations=steps, granularity="token", progress=False
        )
        ours_delta = float(ours(text, target)[0].convergence_delta.abs()[0])
        _, delta = layer_ig.attribute(
            ids, baselines=baseline_ids, target=target, n_steps=steps, method="gausslegendre",
            return_convergence_delta=True,
        )  # fmt: skip
        rows[steps] = {"ours": ours_delta, "captum": float(delta.abs()[0])}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n-words", type=int, default=11, help="words (elements) per KernelSHAP text (2^n rows exact)"
    )
    parser.add_argument("--texts", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/accuracy.json"))
    args = parser.parse_args()
    model, tokenizer = sentiment_classifier()
    shap = [
        kernel_shap_errors(model, tokenizer, text, args.seeds)
        for text in tweets_with_words(model, tokenizer, args.n_words, args.texts)
    ]
    print(f"KernelSHAP relative L2 error vs exact Shapley values ({len(shap)} tweets of {args.n_words} words, "
          f"{args.seeds} seeds)")  # fmt: skip
    print("| model rows | ours | captum |\n|---|---|---|")
    summary = {}
    for budget in BUDGETS:
        ours = statistics.mean(item["errors"][budget]["ours"] for item in shap)
        theirs = statistics.mean(item["errors"][budget]["captum"] for item in shap)
        summary[budget] = {"ours": ours, "captum": theirs}
        print(f"| {budget} | {ours:.4f} | {theirs:.4f} |")
    deltas = [ig_deltas(model, tokenizer, text) for text, _ in balanced_tweet_split()[1][: args.texts]]
    print(
        f"\nIntegratedGradients mean |convergence delta| ({len(deltas)} tweets, logit of the predicted class)"
    )
    print("| steps | ours | captum |\n|---|---|---|")
    ig_summary = {}
    for steps in STEPS:
        ours = statistics.mean(item[steps]["ours"] for item in deltas)
        theirs = statistics.mean(item[steps]["captum"] for item in deltas)
        ig_summary[steps] = {"ours": ours, "captum": theirs}
        print(f"| {steps} | {ours:.2e} | {theirs:.2e} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"kernel_shap": summary, "integrated_gradients": ig_summary, "per_text": shap}, indent=1)
    )


if __name__ == "__main__":
    main()
