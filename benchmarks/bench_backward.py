"""Per-target backward passes on generation: `retain_graph` loop vs `autograd.grad(is_grads_batched=True)`.

The bench input of issue 4 / PITFALLS.md: SmolLM2, a 21-token sequence, 7 scored continuation tokens, 50 rows
(IG path points). Both variants share one forward graph with the LM head only at scored positions; runs are
interleaved and the minimum of `--repeats` is kept. Prints the times and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from interpreto.zoo import smollm2

PROMPT, CONTINUATION = "Roses are red, violets are blue, sugar is sweet and", " so are you, my friend."


def scores_graph(
    model, embeddings: torch.Tensor, target_ids: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    rows = embeddings.detach().requires_grad_(True)
    mask = torch.ones(rows.shape[:2], dtype=torch.long)
    logits = model(
        inputs_embeds=rows, attention_mask=mask, use_cache=False, logits_to_keep=len(target_ids)
    ).logits
    log_probs = logits.log_softmax(-1)
    index = target_ids.view(1, -1, 1).expand(rows.shape[0], -1, 1)
    return rows, log_probs.gather(-1, index).squeeze(-1)  # (rows, n_targets)


def retain_graph_loop(model, embeddings, target_ids) -> torch.Tensor:
    rows, scores = scores_graph(model, embeddings, target_ids)
    n_targets = scores.shape[1]
    grads = [
        torch.autograd.grad(scores[:, t].sum(), rows, retain_graph=t < n_targets - 1)[0]
        for t in range(n_targets)
    ]
    return torch.stack(grads)


def batched_grads(model, embeddings, target_ids) -> torch.Tensor:
    rows, scores = scores_graph(model, embeddings, target_ids)
    n_targets = scores.shape[1]
    grad_outputs = torch.eye(n_targets)[:, None, :].expand(n_targets, scores.shape[0], n_targets)
    return torch.autograd.grad(scores, rows, grad_outputs=grad_outputs, is_grads_batched=True)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/backward.json"))
    args = parser.parse_args()
    model, tokenizer = smollm2()
    prompt_ids = tokenizer(PROMPT)["input_ids"]
    target_ids = tokenizer(CONTINUATION, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + target_ids[:-1]])
    embeddings = model.get_input_embeddings()(ids).detach().expand(args.rows, -1, -1)
    targets = torch.tensor(target_ids)
    reference = retain_graph_loop(model, embeddings, targets)
    torch.testing.assert_close(batched_grads(model, embeddings, targets), reference, atol=1e-5, rtol=1e-4)
    times = {"retain_graph": [], "is_grads_batched": []}
    for _ in range(args.repeats):
        for name, function in (("retain_graph", retain_graph_loop), ("is_grads_batched", batched_grads)):
            start = time.perf_counter()
            function(model, embeddings, targets)
            times[name].append(time.perf_counter() - start)
    best = {name: min(values) for name, values in times.items()}
    print(f"{ids.shape[1]} tokens, {len(target_ids)} targets, {args.rows} rows: " + ", ".join(
        f"{name} {seconds:.2f} s" for name, seconds in best.items()))  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"tokens": ids.shape[1], "targets": len(target_ids), "rows": args.rows,
                                    "best_s": best, "all_s": times}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
