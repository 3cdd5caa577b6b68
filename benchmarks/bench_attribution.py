"""Time per explanation of every attribution method against its compute floor, on the zoo models.

The floor is the same number of model evaluations done as plain batched PyTorch calls in this process:
- gradient methods: one batched forward+backward over all their rows (path points, noisy copies; 1 row for
  Saliency and InputXGradient), the LM head only at scored positions and one backward per target for
  generation;
- perturbation methods: one batched inference forward (64 rows per call) over as many full-length rows as the
  method sent to the model (counted with a forward pre-hook during the warm-up: deduplicated rows for Sobol and
  KernelSHAP's exact coalitions; the rows of our KV-prefix reuse count as full rows).
Ours runs with its defaults (batch size and memory budget chosen by the library). Prints a table, writes JSON.

`--tasks budget` (also in the default run) times classifier IG(50) on 41- and 128-token reviews with the default
CPU memory budget (a quarter of the available memory) and with the former fixed 0.75 GiB, which cut 50 rows of 41
tokens into 2 x 25, against the floor of one forward+backward of 50 rows.

Run with `make bench` (CPU numbers depend on the machine; compare ratios, not seconds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from interpreto import (
    GradientShap,
    InputXGradient,
    IntegratedGradients,
    KernelShap,
    Lime,
    Occlusion,
    Saliency,
    SmoothGrad,
    Sobol,
    SquareGrad,
    VarGrad,
)
from interpreto.zoo import sentiment_classifier, smollm2

REVIEW = (
    "I went in expecting very little, but this film surprised me: the story is clever, the actors are "
    "wonderful, and the ending made the whole theatre cheer."
)
PROMPT, CONTINUATION = "Roses are red, violets are blue, sugar is sweet and", " so are you, my friend."
N_STEPS = 50
N_SAMPLES = 100
FLOOR_BATCH = 64


def best_time(function, repeats: int, slow_s: float = 10.0) -> float:
    """Best of `repeats` runs after a warm-up; a warm-up slower than `slow_s` is followed by one run only."""
    start = time.perf_counter()
    function()  # warm-up
    if time.perf_counter() - start > slow_s:
        repeats = 1
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


def forward_floor(model, ids, n_rows: int, head_positions: int | None) -> None:
    kwargs = {} if head_positions is None else {"logits_to_keep": head_positions}
    with torch.inference_mode():
        for start in range(0, n_rows, FLOOR_BATCH):
            rows = ids.expand(min(FLOOR_BATCH, n_rows - start), -1)
            model(input_ids=rows, attention_mask=torch.ones_like(rows), **kwargs)


def rows_sent(model, explain) -> int:
    """Rows the model sees during one call of `explain` (sum of the batch sizes of its forward calls)."""
    count = [0]

    def hook(module, args, kwargs):
        tensor = kwargs.get("input_ids")
        tensor = kwargs.get("inputs_embeds") if tensor is None else tensor
        tensor = args[0] if tensor is None and args else tensor
        count[0] += tensor.shape[0]

    handle = model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        explain()
    finally:
        handle.remove()
    return count[0]


def methods(model, tokenizer) -> list[tuple[str, object, int | None]]:
    """(label, explainer, rows of its gradient floor or None for a perturbation method)."""
    common = {"progress": False}
    return [
        ("Saliency", Saliency(model, tokenizer, **common), 1),
        ("InputXGradient", InputXGradient(model, tokenizer, **common), 1),
        (f"IntegratedGradients({N_STEPS})", IntegratedGradients(model, tokenizer, n_perturbations=N_STEPS, **common), N_STEPS),
        (f"GradientShap({N_STEPS})", GradientShap(model, tokenizer, n_perturbations=N_STEPS, **common), N_STEPS),
        (f"SmoothGrad({N_STEPS})", SmoothGrad(model, tokenizer, n_perturbations=N_STEPS, **common), N_STEPS),
        (f"SquareGrad({N_STEPS})", SquareGrad(model, tokenizer, n_perturbations=N_STEPS, **common), N_STEPS),
        (f"VarGrad({N_STEPS})", VarGrad(model, tokenizer, n_perturbations=N_STEPS, **common), N_STEPS),
        ("Occlusion", Occlusion(model, tokenizer, **common), None),
        (f"Lime({N_SAMPLES})", Lime(model, tokenizer, n_perturbations=N_SAMPLES, **common), None),
        (f"KernelShap({N_SAMPLES})", KernelShap(model, tokenizer, n_perturbations=N_SAMPLES, **common), None),
        ("Sobol(default N)", Sobol(model, tokenizer, **common), None),
    ]  # fmt: skip


def bench_task(name, model, tokenizer, inputs, targets, repeats: int, only: set[str]) -> list[dict]:
    if targets is None:
        ids = tokenizer(inputs, return_tensors="pt")["input_ids"]
        head = None
    else:
        prompt_ids = tokenizer(inputs)["input_ids"]
        target_ids = tokenizer(targets, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt_ids + target_ids[:-1]])
        head = len(target_ids)
    embeddings = model.get_input_embeddings()(ids).detach()
    results = []
    for label, explainer, gradient_rows in methods(model, tokenizer):
        if only and label.split("(")[0] not in only:
            continue
        explain = lambda explainer=explainer: explainer(inputs, targets)  # noqa: E731
        n_rows = rows_sent(model, explain) if gradient_rows is None else gradient_rows
        if gradient_rows is None:
            floor = lambda n_rows=n_rows: forward_floor(model, ids, n_rows, head)  # noqa: E731
        else:
            floor = lambda n_rows=n_rows: gradient_floor(model, embeddings, n_rows, head)  # noqa: E731
        ours, base = best_time(explain, repeats), best_time(floor, repeats)
        results.append({"task": name, "method": label, "tokens": ids.shape[1], "rows": n_rows, "ours_s": ours,
                        "floor_s": base, "ratio": ours / base})  # fmt: skip
        print(f"{name:15} {label:26} {ids.shape[1]:3d} tok {n_rows:5d} rows  ours {ours:7.3f} s  "
              f"floor {base:7.3f} s  x{ours / base:5.2f}", flush=True)  # fmt: skip
    return results


def text_of_length(tokenizer, n_tokens: int) -> str:
    """The review's words repeated until the text has exactly `n_tokens` tokens, special tokens included."""
    words, text = REVIEW.split(), ""
    for k in range(10 * n_tokens):
        candidate = f"{text} {words[k % len(words)]}".strip()
        length = len(tokenizer(candidate)["input_ids"])
        if length > n_tokens:
            break
        text = candidate
        if length == n_tokens:
            return text
    raise ValueError(f"no prefix of the repeated review has exactly {n_tokens} tokens")


def bench_budget(model, tokenizer, repeats: int) -> list[dict]:
    """Classifier IG(50) at 41 and 128 tokens: the default CPU budget and the former 0.75 GiB vs the floor, run
    interleaved (floor, default, 0.75 GiB, floor, ...) and compared by their medians over `2 * repeats` rounds, so
    that a slow spell of the machine hits all three alike."""
    results = []
    for n_tokens in (41, 128):
        text = text_of_length(tokenizer, n_tokens)
        ids = tokenizer(text, return_tensors="pt")["input_ids"]
        embeddings = model.get_input_embeddings()(ids).detach()
        runs = {"floor": lambda embeddings=embeddings: gradient_floor(model, embeddings, N_STEPS, None)}
        chunks = {}
        for label, budget in (("default budget", None), ("0.75 GiB (before)", 0.75)):
            explainer = IntegratedGradients(
                model, tokenizer, n_perturbations=N_STEPS, progress=False, memory_budget=budget
            )
            chunks[label] = len(list(explainer.batches(N_STEPS, n_tokens, backward=True)))
            runs[label] = lambda explainer=explainer, text=text: explainer(text)
        times = {label: [] for label in runs}
        for run in runs.values():
            run()  # warm-up
        for _ in range(2 * repeats):
            for label, run in runs.items():
                start = time.perf_counter()
                run()
                times[label].append(time.perf_counter() - start)
        base = statistics.median(times["floor"])
        for label in chunks:
            ours = statistics.median(times[label])
            results.append({"task": "budget", "method": f"IntegratedGradients({N_STEPS}) {label}",
                            "tokens": n_tokens, "rows": N_STEPS, "chunks": chunks[label], "ours_s": ours,
                            "floor_s": base, "ratio": ours / base})  # fmt: skip
            print(f"budget          IG({N_STEPS}) {label:18} {n_tokens:3d} tok {chunks[label]} chunk(s)  "
                  f"ours {ours:7.3f} s  floor {base:7.3f} s  x{ours / base:5.2f} (medians)", flush=True)  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tasks", default="budget,classification,generation")
    parser.add_argument("--methods", default="", help="comma-separated method names (default: all)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/attribution.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    only = {name for name in args.methods.split(",") if name}
    tasks = args.tasks.split(",")
    results = []
    if "budget" in tasks:
        model, tokenizer = sentiment_classifier()
        results += bench_budget(model, tokenizer, args.repeats)
    if "classification" in tasks:
        model, tokenizer = sentiment_classifier()
        results += bench_task("classification", model, tokenizer, REVIEW, None, args.repeats, only)
    if "generation" in tasks:
        lm, lm_tokenizer = smollm2()
        results += bench_task("generation", lm, lm_tokenizer, PROMPT, CONTINUATION, args.repeats, only)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"date": time.strftime("%Y-%m-%d"), "threads": torch.get_num_threads(), "results": results}
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
