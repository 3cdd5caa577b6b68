"""Time per explanation of each attribution method against its compute floor, on the zoo models.

The floor is the same number of model evaluations done as plain batched PyTorch calls in this process: one
batched forward+backward over all path points for gradient methods (one backward per target for generation),
one batched inference forward over all perturbed rows for Occlusion. Prints a table and writes JSON.

Run with `make bench` (CPU numbers depend on the machine; compare ratios, not seconds).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from interpreto import InputXGradient, IntegratedGradients, Occlusion, Saliency
from interpreto.zoo import sentiment_classifier, smollm2

REVIEW = (
    "I went in expecting very little, but this film surprised me: the story is clever, the actors are "
    "wonderful, and the ending made the whole theatre cheer."
)
PROMPT, CONTINUATION = "Roses are red, violets are blue, sugar is sweet and", " so are you, my friend."
N_STEPS = 50


def best_time(function, repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def gradient_floor(model, embeddings, n_rows: int, head_positions: int | None) -> None:
    rows = embeddings.expand(n_rows, -1, -1).clone().requires_grad_(True)
    mask = torch.ones(rows.shape[:2], dtype=torch.long)
    if head_positions is None:
        scores = model(inputs_embeds=rows, attention_mask=mask).logits[:, :1]
    else:
        scores = model(inputs_embeds=rows, attention_mask=mask, logits_to_keep=head_positions).logits
        scores = scores.log_softmax(-1)[..., 0]
    for target in range(scores.shape[1]):
        torch.autograd.grad(scores[:, target].sum(), rows, retain_graph=target < scores.shape[1] - 1)


def occlusion_floor(model, ids, n_rows: int, head_positions: int | None) -> None:
    with torch.inference_mode():
        rows = ids.expand(n_rows, -1)
        kwargs = {} if head_positions is None else {"logits_to_keep": head_positions}
        model(input_ids=rows, attention_mask=torch.ones_like(rows), **kwargs)


def bench_task(name, model, tokenizer, inputs, targets, repeats: int) -> list[dict]:
    if targets is None:
        ids = tokenizer(inputs, return_tensors="pt")["input_ids"]
        head = None
    else:
        prompt_ids = tokenizer(inputs)["input_ids"]
        target_ids = tokenizer(targets, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt_ids + target_ids[:-1]])
        head = len(target_ids)
    embeddings = model.get_input_embeddings()(ids).detach()
    n_elements = len(Occlusion(model, tokenizer, progress=False)(inputs, targets)[0].elements)
    cases = [
        ("Saliency", Saliency(model, tokenizer, progress=False), lambda: gradient_floor(model, embeddings, 1, head)),
        ("InputXGradient", InputXGradient(model, tokenizer, progress=False),
         lambda: gradient_floor(model, embeddings, 1, head)),
        (f"IntegratedGradients({N_STEPS})",
         IntegratedGradients(model, tokenizer, n_perturbations=N_STEPS, batch_size=N_STEPS, progress=False),
         lambda: gradient_floor(model, embeddings, N_STEPS, head)),
        ("Occlusion", Occlusion(model, tokenizer, batch_size=256, progress=False),
         lambda: occlusion_floor(model, ids, n_elements + 1, head)),
    ]  # fmt: skip
    rows = []
    for method, explainer, floor in cases:
        ours = best_time(lambda explainer=explainer: explainer(inputs, targets), repeats)
        base = best_time(floor, repeats)
        rows.append({"task": name, "method": method, "tokens": ids.shape[1], "ours_s": ours, "floor_s": base,
                     "ratio": ours / base})  # fmt: skip
        print(f"{name:15} {method:26} {ids.shape[1]:4d} tok  ours {ours:7.3f} s  floor {base:7.3f} s  "
              f"x{ours / base:5.2f}", flush=True)  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/attribution.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    results = []
    model, tokenizer = sentiment_classifier()
    results += bench_task("classification", model, tokenizer, REVIEW, None, args.repeats)
    lm, lm_tokenizer = smollm2()
    results += bench_task("generation", lm, lm_tokenizer, PROMPT, CONTINUATION, args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"threads": torch.get_num_threads(), "results": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
