"""Concept benchmarks, by part (`--parts`); each part adds its rows to `benchmarks/results/concepts.json`.

- `sae_training`: training throughput (rows/s, a row being a token's activation) of `TopKSAEConcepts.fit`
  against the floor a user would write: the same overcomplete TopK module with its decoder bias, Adam, the
  same batches and number of steps, MSE loss, no schedule, no metrics, no dead-latent tracking. Ours runs
  with `aux_coefficient=0` (the same loss as the floor: the ratio is the loop's overhead; target <= 1.15x)
  and with the default AuxK loss (its extra cost; latents silent for 4 batches count as dead, so that it runs
  within the epoch). Activations: Gaussian rows of SmolLM2's width (d=576), 4096 concepts, k=32, batches of
  1024, one epoch (~49 steps).

More parts (activation extraction, peak memory when streaming shards) plug into `PARTS`.

Run with `.venv/bin/python benchmarks/bench_concepts.py [--parts sae_training] [--device cuda]`; CPU numbers
depend on the machine and its load (compare ratios).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from interpreto.concepts import TopKSAEConcepts

RESULTS = Path(__file__).parent / "results" / "concepts.json"


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_topk_training(rows: torch.Tensor, nb_concepts: int, top_k: int, batch_size: int, device) -> None:
    """The floor: the same module and steps as `TopKSAEConcepts.fit`, in the plainest loop."""
    generator = torch.Generator().manual_seed(0)
    module = TopKSAEConcepts(None, nb_concepts, top_k=top_k)._new_module(rows.shape[1], generator).to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=2e-4 / math.sqrt(nb_concepts / 2**14))
    module.train()
    order = torch.randperm(rows.shape[0], generator=generator)
    for start in range(0, rows.shape[0], batch_size):
        batch = rows[order[start : start + batch_size]].to(device)
        _, _, rebuilt = module(batch)
        loss = (rebuilt - batch).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    _synchronize(device)


def ours_topk_training(rows, nb_concepts: int, top_k: int, batch_size: int, device, aux: float) -> None:
    explainer = TopKSAEConcepts(None, nb_concepts, top_k=top_k, aux_coefficient=aux, device=device)
    # with AuxK, latents silent for 4 batches count as dead, so that the loss runs within the one epoch
    dead_after = 4 * batch_size if aux else None
    explainer.fit(rows, nb_epochs=1, batch_size=batch_size, progress=False, dead_after=dead_after)
    _synchronize(device)


def best_times(functions: dict, repeats: int) -> dict[str, float]:
    """The best of `repeats` timings of each function, the runs interleaved (A B C A B C ...) so that a change
    in the machine's load hits them alike; one warm-up run each first."""
    for function in functions.values():
        function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def bench_sae_training(args) -> list[dict]:
    device = torch.device(args.device)
    rows = torch.randn(args.rows, args.dim, generator=torch.Generator().manual_seed(0))
    shape = {"rows": args.rows, "dim": args.dim, "nb_concepts": args.nb_concepts, "top_k": args.top_k}
    shape["batch_size"] = args.batch_size
    runs = {
        "plain loop (floor)": lambda: plain_topk_training(
            rows, args.nb_concepts, args.top_k, args.batch_size, device
        ),
        "TopKSAEConcepts.fit, aux 0": lambda: ours_topk_training(
            rows, args.nb_concepts, args.top_k, args.batch_size, device, 0.0
        ),
        "TopKSAEConcepts.fit, AuxK 1/32": lambda: ours_topk_training(
            rows, args.nb_concepts, args.top_k, args.batch_size, device, 1 / 32
        ),
    }
    results = [
        {"part": "sae_training", "run": name, "seconds": seconds, "rows_per_s": args.rows / seconds}
        for name, seconds in best_times(runs, args.repeats).items()
    ]
    floor = results[0]["seconds"]
    for row in results:
        row.update(shape, device=str(device), ratio_to_floor=row["seconds"] / floor)
    return results


PARTS = {"sae_training": bench_sae_training}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=sorted(PARTS), default=sorted(PARTS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=576)
    parser.add_argument("--nb-concepts", type=int, default=4096)
    parser.add_argument("--top-k", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    report = json.loads(args.out.read_text()) if args.out.is_file() else {}
    report["torch_threads"] = torch.get_num_threads()
    for part in args.parts:
        rows = PARTS[part](args)
        report[part] = rows
        print(f"\n{part} (torch threads: {torch.get_num_threads()})")
        print(f"{'run':<34} {'seconds':>9} {'rows/s':>10} {'x floor':>8}")
        for row in rows:
            seconds, speed, ratio = row["seconds"], row["rows_per_s"], row["ratio_to_floor"]
            print(f"{row['run']:<34} {seconds:>9.2f} {speed:>10.0f} {ratio:>8.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
