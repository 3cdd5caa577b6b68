"""Gallery: contrastive attribution, which words make SmolLM2 say " Paris" rather than " Rome".

Explains the contrastive score log p(" Paris") - log p(" Rome") after "The Eiffel Tower is in the city of"
(`explainer(prompt, " Paris", contrast=" Rome")`, the README's Quick start) with two methods whose defining
property the script asserts:

- `Occlusion`: each word's value equals the model's own drop in the contrastive score when that word is replaced
  by a space, computed by hand (one forward pass per word), and equals Occlusion(" Paris") - Occlusion(" Rome");
- `KernelShap`: the prompt has 8 words, so all 2^8 - 2 = 254 coalitions are enumerated and the values are the
  exact Shapley values; efficiency: they sum to f(x) - f(every word removed), the latter computed by hand.

`IntegratedGradients` is run too, at 32 and 128 path points, and is *not* plotted: on this prompt the
contrastive score along the straight path from the all-space baseline to the input swings by several nats
(the figure's right panel, 401 points), so the quadrature has not converged at any budget that fits here. The
script asserts that IG's reported `convergence_delta` is honest: sum of attributions minus (f(x) - f(b)), with
f(b) computed by hand. Writes `docs/gallery/contrastive.md`, its JSON and a PNG.

Run with `OMP_NUM_THREADS=1 python gallery/contrastive.py` (measured: 40 s in the script, 50 s
wall clock with the imports, on one thread of a 2-core machine shared with other jobs; model cached).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from matplotlib.figure import Figure
from transformers.utils import logging as hf_logging

from interpreto import Granularity, IntegratedGradients, KernelShap, Occlusion
from interpreto.model.tokens import replacement_token_id
from interpreto.zoo import smollm2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pages import DOCS_GALLERY, provenance, write_page  # noqa: E402

PAGE = "contrastive"
PROMPT = "The Eiffel Tower is in the city of"
TARGET, CONTRAST = " Paris", " Rome"
TOLERANCE = 1e-3  # relative to the magnitude of the log-probabilities compared
IG_STEPS = (32, 128)
PATH_POINTS = 401
MAX_COALITIONS = 510


def one_token(tokenizer, text: str) -> int:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == 1, (text, ids)
    return ids[0]


def contrastive_scores(lm, rows: torch.Tensor, target: int, contrast: int, embeds: bool = False):
    """log p(target) - log p(contrast) at the last position of each row, and the larger |log p| (the scale)."""
    with torch.inference_mode():
        logits = lm(inputs_embeds=rows).logits if embeds else lm(input_ids=rows).logits
    log_p = logits[:, -1].log_softmax(-1)
    scale = torch.maximum(log_p[:, target].abs(), log_p[:, contrast].abs())
    return log_p[:, target] - log_p[:, contrast], scale


def word_positions(tokenizer, prompt: str, offsets) -> tuple[list[int], list[list[int]]]:
    """The prompt's ids (with the tokenizer's special tokens, as the explainer tokenizes it) and, for each word,
    the positions of the tokens whose character span overlaps it."""
    encoding = tokenizer(prompt, return_offsets_mapping=True)
    spans = encoding["offset_mapping"]
    groups = [
        [i for i, (a, b) in enumerate(spans) if b > a and a < stop and b > start] for start, stop in offsets
    ]
    return encoding["input_ids"], groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", default=PROMPT)
    parser.add_argument("--target", default=TARGET)
    parser.add_argument("--contrast", default=CONTRAST)
    args = parser.parse_args()
    began = time.perf_counter()
    hf_logging.disable_progress_bar()
    lm, tokenizer = smollm2()
    target, contrast = one_token(tokenizer, args.target), one_token(tokenizer, args.contrast)
    common = {"granularity": Granularity.WORD, "progress": False}
    timings = {}

    start = time.perf_counter()
    occlusion = Occlusion(lm, tokenizer, **common)(args.prompt, args.target, contrast=args.contrast)[0]
    timings["Occlusion"] = time.perf_counter() - start
    n_words = occlusion.n_prompt_elements
    words = occlusion.elements[:n_words]
    assert occlusion.contrasts == [contrast] and occlusion.targets == [target]

    # Occlusion = the model's own differences, computed by hand
    ids, groups = word_positions(tokenizer, args.prompt, occlusion.offsets[:n_words])
    space = replacement_token_id(tokenizer)
    rows = torch.tensor([ids] * (n_words + 2))
    for j, positions in enumerate(groups):
        rows[j + 1, positions] = space
    rows[-1, [p for positions in groups for p in positions]] = space  # every word removed
    f, scale = contrastive_scores(lm, rows, target, contrast)
    f_x, f_empty = float(f[0]), float(f[-1])
    by_hand = f[0] - f[1:-1]
    occlusion_scale = float(scale.max())
    occlusion_residual = float((occlusion.attributions[0, :n_words] - by_hand).abs().max()) / occlusion_scale
    score_residual = abs(float(occlusion.scores[0]) - f_x) / occlusion_scale
    assert occlusion_residual <= TOLERANCE and score_residual <= TOLERANCE, (
        occlusion_residual,
        score_residual,
    )
    plain = Occlusion(lm, tokenizer, **common)(args.prompt, args.target)[0]
    versus = Occlusion(lm, tokenizer, **common)(args.prompt, args.contrast)[0]
    difference = plain.attributions[0, :n_words] - versus.attributions[0, :n_words]
    linearity_residual = (
        float((occlusion.attributions[0, :n_words] - difference).abs().max()) / occlusion_scale
    )
    assert linearity_residual <= TOLERANCE, linearity_residual

    # KernelShap: exact Shapley values (all 2^n - 2 coalitions), efficiency against f(every word removed)
    n_coalitions = min(2**n_words - 2, MAX_COALITIONS)  # all of them (exact Shapley values) up to 9 words
    exact = n_coalitions == 2**n_words - 2
    start = time.perf_counter()
    shap = KernelShap(lm, tokenizer, n_perturbations=n_coalitions, **common)(
        args.prompt, args.target, contrast=args.contrast
    )[0]
    timings["KernelShap"] = time.perf_counter() - start
    shap_values = shap.attributions[0, :n_words]
    efficiency_residual = abs(float(shap_values.sum()) - (f_x - f_empty)) / abs(f_x - f_empty)
    assert efficiency_residual <= 0.01, efficiency_residual

    # IntegratedGradients: its residual, and the contrastive score along its straight path
    ig_rows = []
    for n in IG_STEPS:
        start = time.perf_counter()
        ig = IntegratedGradients(lm, tokenizer, n_perturbations=n, **common)(
            args.prompt, args.target, contrast=args.contrast
        )[0]
        timings[f"IntegratedGradients ({n})"] = time.perf_counter() - start
        total = float(ig.attributions[0, :n_words].sum())
        delta = float(ig.convergence_delta[0])
        # the reported residual is sum - (f(x) - f(b)) with b the all-space input, f(b) computed by hand
        honest = abs(total - delta - (f_x - f_empty)) / occlusion_scale
        assert honest <= TOLERANCE, honest
        ig_rows.append(
            {
                "n": n,
                "sum": total,
                "delta": delta,
                "relative": abs(delta) / abs(f_x - f_empty),
                "honest": honest,
            }
        )
    embeddings = lm.get_input_embeddings().weight.detach()
    x = embeddings[torch.tensor(ids)]
    baseline = embeddings[
        torch.tensor([space if any(i in g for g in groups) else t for i, t in enumerate(ids)])
    ]
    alphas = torch.linspace(0, 1, PATH_POINTS)
    path = torch.cat(
        [
            contrastive_scores(
                lm, baseline + a[:, None, None] * (x - baseline), target, contrast, embeds=True
            )[0]
            for a in alphas.split(101)
        ]
    )
    assert abs(float(path[0]) - f_empty) <= TOLERANCE * occlusion_scale
    assert abs(float(path[-1]) - f_x) <= TOLERANCE * occlusion_scale
    total_variation = float(path.diff().abs().sum())

    plot(words, occlusion.attributions[0, :n_words], shap_values, exact, alphas, path, ig_rows, args, PAGE)
    seconds = time.perf_counter() - began
    data = {
        "prompt": args.prompt,
        "target": args.target,
        "contrast": args.contrast,
        "words": words,
        "f_x": f_x,
        "f_every_word_removed": f_empty,
        "occlusion": occlusion.attributions[0, :n_words].tolist(),
        "occlusion_target_only": plain.attributions[0, :n_words].tolist(),
        "occlusion_contrast_only": versus.attributions[0, :n_words].tolist(),
        "shapley": shap_values.tolist(),
        "kernel_shap_coalitions": n_coalitions,
        "kernel_shap_exact": exact,
        "occlusion_residual": occlusion_residual,
        "score_residual": score_residual,
        "linearity_residual": linearity_residual,
        "efficiency_residual": efficiency_residual,
        "integrated_gradients": ig_rows,
        "path_total_variation": total_variation,
        "path_min": float(path.min()),
        "path_max": float(path.max()),
        "timings_s": timings,
        "seconds": seconds,
    }
    table = "\n".join(
        [
            f"| word | Occlusion | Shapley (KernelShap) | Occlusion, log p({args.target!r}) only | "
            f"Occlusion, log p({args.contrast!r}) only |",
            "|---|---|---|---|---|",
            *(
                f"| {w} | {o:.3f} | {s:.3f} | {p:.3f} | {v:.3f} |"
                for w, o, s, p, v in zip(
                    words,
                    data["occlusion"],
                    data["shapley"],
                    data["occlusion_target_only"],
                    data["occlusion_contrast_only"],
                    strict=True,
                )
            ),
        ]
    )
    ig_table = "\n".join(
        [
            "| IG path points | sum of attributions | f(x) - f(b) | convergence_delta | \\|delta\\| / \\|f(x) - f(b)\\| |",
            "|---|---|---|---|---|",
            *(
                f"| {r['n']} | {r['sum']:.3f} | {f_x - f_empty:.3f} | {r['delta']:.3f} | {r['relative']:.2f} |"
                for r in ig_rows
            ),
        ]
    )
    last_ig = ig_rows[-1]["relative"]  # the largest budget
    converged = last_ig <= 0.01
    verdict = (
        f"With {IG_STEPS[-1]} points the residual is within 1% of f(x) - f(b)."
        if converged
        else f"At {IG_STEPS[-1]} points, the largest budget here, the residual is still {last_ig:.2f} times "
        "f(x) - f(b), so the quadrature has not converged."
    )
    top_occlusion = words[int(occlusion.attributions[0, :n_words].argmax())]
    top_shap = words[int(shap_values.argmax())]
    markdown = f"""# Contrastive attribution

"Which words make the model say Paris?" mixes two questions: which words make it name a city at all, and which
make it pick Paris over another city. A contrastive explanation asks only the second: it explains
log p({args.target!r}) - log p({args.contrast!r}) after "{args.prompt}" on SmolLM2-135M-Instruct
(`explainer(prompt, {args.target!r}, contrast={args.contrast!r})`). Here f(x) = {f_x:.3f} nats; with every word
replaced by a space, f = {f_empty:.3f}. Two methods with an exact property: `Occlusion` (the drop in the score
when one word is replaced by a space) and `KernelShap` with {n_coalitions} coalitions of the {n_words} words
({"all of them: the exact Shapley values" if exact else "sampled: estimated Shapley values"}), whose values
sum to f(x) - f(every word removed).

![Contrastive attributions per word, and the contrastive score along the IG path](contrastive.png)

{table}

The word that most favours {args.target!r} over {args.contrast!r}: "{top_occlusion}" by Occlusion, "{top_shap}" by
the Shapley values. Checked by the script: every Occlusion value equals the score difference computed by hand
(largest residual {occlusion_residual:.1e} of the log-probability scale), contrastive Occlusion equals
Occlusion({args.target!r}) - Occlusion({args.contrast!r}) (residual {linearity_residual:.1e}), and the Shapley
values sum to f(x) - f(every word removed) (relative residual {efficiency_residual:.1e}).

## Integrated Gradients {"has converged" if converged else "does not converge here"}

IntegratedGradients is complete in the limit: its attributions sum to f(x) - f(b). On this prompt the
contrastive score along the straight path from the all-space baseline b to the input swings between
{data["path_min"]:.2f} and {data["path_max"]:.2f} nats (total variation {total_variation:.1f} over
{PATH_POINTS} points, for a net change of {f_x - f_empty:.2f}; right panel). {verdict} Its attributions are
not shown:

{ig_table}

The reported `convergence_delta` is honest (it equals the sum minus f(x) - f(b) with f(b) computed by hand):
check it before reading IG attributions on a causal LM.

Times on this run: {", ".join(f"{name} {t:.1f} s" for name, t in timings.items())}.

{provenance(seconds)}
"""
    page = write_page(PAGE, markdown, data)
    print(f"f(x) = {f_x:.4f}, f(every word removed) = {f_empty:.4f}")
    print(table)
    print(ig_table)
    print(
        f"occlusion residual {occlusion_residual:.2e}, linearity {linearity_residual:.2e}, "
        f"efficiency {efficiency_residual:.2e}, path total variation {total_variation:.2f}"
    )
    print(f"timings {timings}")
    print(f"{seconds:.1f} s; page written to {page}")


def plot(words, occlusion, shapley, exact, alphas, path, ig_rows, args, name: str) -> None:
    """Left: bars per word for both methods; right: the contrastive score along the IG path."""
    figure = Figure(figsize=(12, 4.2), layout="constrained")
    left, right = figure.subplots(1, 2, width_ratios=[1.4, 1])
    positions = torch.arange(len(words)).float()
    left.bar(positions - 0.2, occlusion, width=0.4, label="Occlusion", color="#3b75af")
    left.bar(
        positions + 0.2,
        shapley,
        width=0.4,
        label=f"Shapley (KernelShap, {'exact' if exact else 'sampled'})",
        color="#ef8636",
    )
    left.axhline(0, color="black", linewidth=0.8)
    left.set_xticks(positions.tolist(), words)
    left.set_ylabel(f"attribution to log p({args.target!r}) - log p({args.contrast!r})")
    left.set_title(f'"{args.prompt}" -> {args.target!r} vs {args.contrast!r}', fontsize=10)
    left.legend(fontsize=8)
    right.plot(alphas, path, color="#555555", linewidth=1)
    right.axhline(
        float(path[0]), color="#d62728", linestyle=":", linewidth=1, label="f(b): every word a space"
    )
    right.axhline(float(path[-1]), color="#2ca02c", linestyle=":", linewidth=1, label="f(x): the prompt")
    right.legend(fontsize=8, loc="lower right")
    right.set_xlabel("alpha (embeddings b + alpha (x - b), b = spaces)")
    right.set_ylabel("contrastive score (nats)")
    residuals = ", ".join(f"n={r['n']}: {r['relative']:.2f}" for r in ig_rows)
    right.set_title(f"score along IG's straight path\nIG |delta| / |f(x) - f(b)|: {residuals}", fontsize=9)
    figure.savefig(DOCS_GALLERY / f"{name}.png", dpi=110)


if __name__ == "__main__":
    main()
