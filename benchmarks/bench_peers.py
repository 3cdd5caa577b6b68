"""Time per explanation of our attribution methods against the peer libraries, on the same models and inputs.

Peers: captum, inseq, transformers-interpret and Interpreto 0.5 (PyPI), installed in `.venv-peers` by
`make bench-peers`. Every library, ours included, runs in its own worker process
(`benchmarks/peers/worker.py`) that loads the zoo models from their cache folders with `from_pretrained(path)`;
for each method the libraries are timed interleaved (ours, peer 1, peer 2, ..., ours, peer 1, ...), each after a
warm-up, and the median is kept. On the LM, each run gets a fresh worker whose first explanation (the warm-up)
also measures the resident-memory high-water mark. Prints a table and writes JSON and a markdown table.

Run with `make bench-peers` (CPU numbers depend on the machine; compare ratios, not seconds).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

from bench_attribution import CONTINUATION, PROMPT, REVIEW
from peers.client import PEERS_PYTHON, WorkerPool

from interpreto.zoo import cache_dir, sentiment_classifier, smollm2

BATCH = 64  # the batched setting of each peer's batch knob: our default `batch_size`

# method -> (our settings, [(library, setting label, settings)]); `None` as label means the library's default.
CLASSIFICATION = {
    "IntegratedGradients(50)": ("IntegratedGradients", {"n_perturbations": 50}, [
        ("captum", "default", {"n_steps": 50}),
        ("transformers_interpret", "default", {"n_steps": 50}),
        ("interpreto05", "default", {"n_perturbations": 50}),
        ("interpreto05", f"batch_size={BATCH}", {"n_perturbations": 50, "batch_size": BATCH}),
    ]),
    "Saliency": ("Saliency", {}, [
        ("captum", "default", {}),
        ("interpreto05", "default", {}),
    ]),
    "InputXGradient": ("InputXGradient", {}, [
        ("captum", "default", {}),
        ("interpreto05", "default", {}),
    ]),
    "Occlusion(word)": ("Occlusion", {}, [
        ("captum", "default", {}),
        ("captum", f"perturbations_per_eval={BATCH}", {"perturbations_per_eval": BATCH}),
        ("interpreto05", "default", {}),
        ("interpreto05", f"batch_size={BATCH}", {"batch_size": BATCH}),
    ]),
    "Lime(100)": ("Lime", {"n_perturbations": 100}, [
        ("captum", "default", {"n_samples": 100}),
        ("captum", f"perturbations_per_eval={BATCH}", {"n_samples": 100, "perturbations_per_eval": BATCH}),
        ("interpreto05", "default", {"n_perturbations": 100}),
        ("interpreto05", f"batch_size={BATCH}", {"n_perturbations": 100, "batch_size": BATCH}),
    ]),
    "KernelShap(100)": ("KernelShap", {"n_perturbations": 100}, [
        ("captum", "default", {"n_samples": 100}),
        ("captum", f"perturbations_per_eval={BATCH}", {"n_samples": 100, "perturbations_per_eval": BATCH}),
        ("interpreto05", "default", {"n_perturbations": 100}),
        ("interpreto05", f"batch_size={BATCH}", {"n_perturbations": 100, "batch_size": BATCH}),
    ]),
    "SmoothGrad(50)": ("SmoothGrad", {"n_perturbations": 50}, [
        ("captum", "default", {"nt_samples": 50}),
        ("interpreto05", "default", {"n_perturbations": 50}),
        ("interpreto05", f"batch_size={BATCH}", {"n_perturbations": 50, "batch_size": BATCH}),
    ]),
}  # fmt: skip

# Token granularity on the LM: inseq and captum's TextTokenInput attribute tokens.
GENERATION = {
    "Saliency": ("Saliency", {"granularity": "token"}, [
        ("inseq", "default", {}),
        ("captum", "default", {}),
        ("interpreto05", "default", {"granularity": "token"}),
    ]),
    "IntegratedGradients(50)": ("IntegratedGradients", {"n_perturbations": 50, "granularity": "token"}, [
        ("inseq", "default", {"n_steps": 50}),
        ("captum", "default", {"n_steps": 50}),
        ("interpreto05", "default", {"n_perturbations": 50, "granularity": "token"}),
        ("interpreto05", f"batch_size={BATCH}", {"n_perturbations": 50, "granularity": "token", "batch_size": BATCH}),
    ]),
    "Occlusion": ("Occlusion", {"granularity": "token"}, [
        ("inseq", "default", {}),
        ("captum", "default", {}),
        ("captum", f"perturbations_per_eval={BATCH}", {"perturbations_per_eval": BATCH}),
        ("interpreto05", "default", {"granularity": "token"}),
        ("interpreto05", f"batch_size={BATCH}", {"granularity": "token", "batch_size": BATCH}),
    ]),
    "Lime(100)": ("Lime", {"n_perturbations": 100, "granularity": "token"}, [
        ("inseq", "default", {"n_samples": 100}),
        ("inseq", f"perturbations_per_eval={BATCH}", {"n_samples": 100, "perturbations_per_eval": BATCH}),
        ("captum", "default", {"n_samples": 100}),
        ("captum", f"perturbations_per_eval={BATCH}", {"n_samples": 100, "perturbations_per_eval": BATCH}),
        ("interpreto05", "default", {"n_perturbations": 100, "granularity": "token"}),
        ("interpreto05", f"batch_size={BATCH}", {"n_perturbations": 100, "granularity": "token", "batch_size": BATCH}),
    ]),
}  # fmt: skip


def task_inputs() -> dict[str, dict]:
    """Model folder, text and target of each task; the classifier's target is its predicted class."""
    import torch

    model, tokenizer = sentiment_classifier()
    with torch.inference_mode():
        predicted = int(model(**tokenizer(REVIEW, return_tensors="pt")).logits.argmax(-1))
    smollm2()  # builds the cache folder on first use
    root = cache_dir()
    return {
        "classification": {
            "model_path": str(root / "sentiment-minilm-v1"),
            "text": REVIEW,
            "target": predicted,
        },
        "generation": {
            "model_path": str(root / "smollm2-135m-instruct-v1"),
            "text": PROMPT,
            "target": CONTINUATION,
        },
    }


def runners(task: str, table: dict, inputs: dict, libraries: set[str]) -> list[tuple[str, list[dict]]]:
    """For each method, the runs to interleave: ours first, then each peer setting (as `{library, setting, case}`)."""
    methods = []
    for label, (our_method, our_settings, peers) in table.items():

        def case(method, settings):
            return {"task": task, **inputs[task], "method": method, "settings": settings}

        runs = [{"library": "ours", "setting": "default", "case": case(our_method, our_settings)}]
        runs += [{"library": library, "setting": setting, "case": case(our_method, settings)}
                 for library, setting, settings in peers if library in libraries]  # fmt: skip
        methods.append((label, runs))
    return methods


def time_interleaved(pool: WorkerPool, runs: list[dict], repeats: int, slow_s: float, memory: bool) -> None:
    """Fill each run's `times` (or `error`), timing the runs in turn `repeats` times.

    With `memory`, each run gets a fresh worker whose first request measures the memory high-water mark of a
    first explanation (`run["memory"]`), which is also its warm-up. A run slower than `slow_s` seconds stops
    being repeated, and one whose warm-up is that slow keeps the warm-up as its only time (`cold`).
    """
    for run in runs:
        run["times"], run["key"] = [], f"{run['library']}/{run['setting']}" if memory else run["library"]
    for round_ in range(repeats + memory):
        for run in runs:
            if run.get("error") or (run["times"] and run["times"][-1] > slow_s):
                continue
            op = "memory" if memory and round_ == 0 else "time"
            answer = pool.request(run["library"], op, run["case"], key=run["key"], slow_s=slow_s)
            if "error" in answer:
                run["error"] = answer["error"]
                continue
            if op == "memory":
                run["memory"] = {name: answer[name] for name in ("rss_before_mb", "peak_mb", "extra_mb")}
            if op == "time" or answer["seconds"] > slow_s:
                run["times"].append(answer["seconds"])
                run["cold"] = answer.get("cold", False)
    for run in runs:
        run["median_s"] = statistics.median(run["times"]) if run["times"] else None
    if memory:
        pool.close_all()


def summarize(task: str, method: str, runs: list[dict]) -> list[dict]:
    """One result row per run, with the peer's time relative to ours (`> 1`: we are faster)."""
    ours = runs[0]["median_s"]
    rows = []
    for run in runs:
        row = {"task": task, "method": method, "library": run["library"], "setting": run["setting"],
               "settings": run["case"]["settings"], "median_s": run["median_s"], "times_s": run["times"],
               "cold": run.get("cold", False), "memory": run.get("memory"), "error": run.get("error")}  # fmt: skip
        row["peer_over_ours"] = run["median_s"] / ours if ours and run["median_s"] else None
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


def format_row(row: dict) -> str:
    """One printed line of the timing table."""
    head = f"{row['task']:14} {row['method']:24} {row['library']:22} {row['setting']:26}"
    if row["median_s"] is None:
        return f"{head} {row['error']}"
    ratio = "" if row["library"] == "ours" else f"x{row['peer_over_ours']:6.2f}"
    memory = f"  peak +{row['memory']['extra_mb']:.0f} MiB" if row["memory"] else ""
    cold = " cold" if row["cold"] else ""
    return f"{head} {row['median_s']:8.3f} s  (n={len(row['times_s'])}{cold}) {ratio}{memory}"


def markdown(rows: list[dict]) -> str:
    """The timing table, and the memory table of the runs that measured it, as markdown (for RESULTS.md)."""
    lines = ["| task | method | library | setting | median s | peer / ours |", "|---|---|---|---|---:|---:|"]
    for row in rows:
        head = f"| {row['task']} | {row['method']} | {row['library']} | {row['setting']} |"
        if row["median_s"] is None:
            lines.append(f"{head} n/a | {row['error']} |")
            continue
        ratio = "1" if row["library"] == "ours" else f"{row['peer_over_ours']:.2f}"
        cold = f" (n={len(row['times_s'])}{', cold' if row['cold'] else ''})"
        lines.append(f"{head} {row['median_s']:.3f}{cold} | {ratio} |")
    lines += [
        "",
        "| LM method | library | setting | RSS before MiB | peak MiB | extra MiB |",
        "|---|---|---|---:|---:|---:|",
    ]
    for row in rows:
        if row["memory"]:
            memory = row["memory"]
            lines.append(f"| {row['method']} | {row['library']} | {row['setting']} | {memory['rss_before_mb']:.0f} | "
                         f"{memory['peak_mb']:.0f} | {memory['extra_mb']:.0f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--slow", type=float, default=15.0, help="stop repeating a run slower than this (seconds)"
    )
    parser.add_argument("--timeout", type=float, default=100.0, help="give up a run after this (seconds)")
    parser.add_argument(
        "--threads", type=int, help="torch threads per worker (OMP_NUM_THREADS); default: torch's"
    )
    parser.add_argument("--libraries", default="captum,inseq,transformers_interpret,interpreto05")
    parser.add_argument("--tasks", default="classification,generation")
    parser.add_argument("--methods", default="", help="comma-separated method labels to run (default: all)")
    parser.add_argument("--no-memory", action="store_true", help="no fresh worker per LM run, no memory")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/peers.json"))
    args = parser.parse_args()
    if not PEERS_PYTHON.exists():
        sys.exit(f"{PEERS_PYTHON} is missing: run `make bench-peers`, which installs the peers.")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    inputs, libraries, tasks = task_inputs(), set(args.libraries.split(",")), args.tasks.split(",")
    tables = {"classification": CLASSIFICATION, "generation": GENERATION}
    start = time.perf_counter()
    for log in args.out.parent.glob("worker-*.log"):
        log.unlink()
    timings = []
    with WorkerPool(args.out.parent, args.timeout, args.threads) as pool:
        for task in tasks:
            memory = task == "generation" and not args.no_memory  # fresh worker per LM run, memory first
            for method, runs in runners(task, tables[task], inputs, libraries):
                if args.methods and method not in args.methods.split(","):
                    continue
                time_interleaved(pool, runs, args.repeats, args.slow, memory)
                timings += summarize(task, method, runs)
            pool.close_all()  # frees the task's models before the next task
        versions = pool.versions
    report = {"date": date.today().isoformat(), "machine": platform.platform(), "python": platform.python_version(),
              "command": " ".join(sys.argv), "repeats": args.repeats, "threads": args.threads, "versions": versions,
              "timings": timings, "total_s": time.perf_counter() - start}  # fmt: skip
    args.out.write_text(json.dumps(report, indent=2))
    args.out.with_suffix(".md").write_text(markdown(timings))
    print(json.dumps(versions, indent=2))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')} in {report['total_s']:.0f} s")


if __name__ == "__main__":
    main()
