"""Benchmark worker: runs one library's explanations on request and answers with JSON timings.

Started by `benchmarks/bench_peers.py` as `<venv>/bin/python benchmarks/peers/worker.py LIBRARY`, where LIBRARY
names an adapter module `lib_<LIBRARY>.py` beside this file. The peers run from `.venv-peers` (Interpreto 0.5
has our import name); our own library runs from `.venv` through the same protocol, so every library pays the
same process and thread set-up.

Protocol: one JSON request per line on stdin, one JSON answer per line on stdout.

- `{"op": "time", "case": CASE, "slow_s": s}`: the first request for a CASE loads the model, builds the
  explanation function and runs it once (warm-up); every request then answers `{"seconds": s}` for one
  explanation. A warm-up slower than `slow_s` is answered as the time (`"cold": true`), without a second run.
- `{"op": "memory", "case": CASE}`: answers `{"rss_before_mb", "peak_mb", "extra_mb", "seconds", "cold"}`: the
  resident set before a first (cold) explanation, with every weight read once before (a memory-mapped checkpoint
  is then resident and "extra" is what the explanation adds), its high-water mark during it, and its time. Meant as the
  first request of a fresh worker; it then also serves as the warm-up of later "time" requests.

A CASE is `{"task", "model_path", "text", "target", "method", "settings"}`. A combination the library cannot
run answers `{"error": "n/a: reason"}`; any other failure answers `{"error": "Type: message"}`.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import NotAvailable, load_model  # noqa: E402


def rss_mb(field: str) -> float:
    """One `Vm*` line of /proc/self/status, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def timed(explain) -> float:
    """Seconds taken by one `explain()`."""
    start = time.perf_counter()
    explain()
    return time.perf_counter() - start


def make_resident(model) -> None:
    """Reads every weight once, so that pages of a memory-mapped checkpoint count before the measurement."""
    import torch

    with torch.no_grad():
        for parameter in model.parameters():
            parameter.sum()


def measure_memory(explain) -> dict:
    """Resident set before `explain()`, its high-water mark during it (the mark is reset first), and its time."""
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
    before = rss_mb("VmRSS")
    seconds = timed(explain)
    peak = rss_mb("VmHWM")
    return {
        "rss_before_mb": before,
        "peak_mb": peak,
        "extra_mb": peak - before,
        "seconds": seconds,
        "cold": True,
    }


class Worker:
    """Keeps the loaded models and the built explanation functions of one library."""

    def __init__(self, library: str):
        self.adapter = importlib.import_module(f"lib_{library}")
        self.models: dict[tuple[str, str], tuple] = {}
        self.functions: dict[str, object] = {}

    def function(self, case: dict):
        """The zero-argument explanation function of `case`, built (and warmed up) on first use."""
        key = json.dumps(case, sort_keys=True)
        if key not in self.functions:
            model_key = (case["task"], case["model_path"])
            if model_key not in self.models:
                self.models[model_key] = load_model(case["task"], case["model_path"])
            model, tokenizer = self.models[model_key]
            self.functions[key] = self.adapter.build(model, tokenizer, case)
        return self.functions[key]

    def answer(self, request: dict) -> dict:
        """Run one request; errors become `{"error": ...}` answers."""
        try:
            fresh = json.dumps(request["case"], sort_keys=True) not in self.functions
            explain = self.function(request["case"])
            if request["op"] == "memory":
                for model, _ in self.models.values():
                    make_resident(model)
                return measure_memory(explain)
            if fresh:
                warm_up = timed(explain)
                if warm_up > request.get("slow_s", float("inf")):
                    return {
                        "seconds": warm_up,
                        "cold": True,
                    }  # slow enough for the warm-up effects not to matter
            return {"seconds": timed(explain)}
        except NotAvailable as error:
            return {"error": f"n/a: {error}"}
        except Exception as error:  # a peer failing on a combination is a result, not a crash
            message = str(error).splitlines()[0][:300] if str(error) else ""
            return {"error": f"{type(error).__name__}: {message}"}


def main() -> None:
    answers = sys.stdout
    worker = None
    with contextlib.redirect_stdout(sys.stderr):  # libraries that print must not corrupt the protocol
        import torch

        torch.manual_seed(0)
        worker = Worker(sys.argv[1])
        answers.write(json.dumps({"ready": True, "versions": worker.adapter.versions()}) + "\n")
        answers.flush()
        for line in sys.stdin:
            if line.strip():
                answers.write(json.dumps(worker.answer(json.loads(line))) + "\n")
                answers.flush()


if __name__ == "__main__":
    main()
