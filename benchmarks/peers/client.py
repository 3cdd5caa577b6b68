"""Client side of the worker protocol (see `worker.py`): starts one worker per library and talks JSON lines."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
WORKER = Path(__file__).resolve().parent / "worker.py"
ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


class WorkerProcess:
    """One running worker; its stderr goes to `<log_dir>/worker-<library>.log`."""

    def __init__(self, library: str, log_dir: Path, threads: int | None = None):
        python = sys.executable if library == "ours" else str(PEERS_PYTHON)
        self.log = open(log_dir / f"worker-{library}.log", "a")  # noqa: SIM115 (closed in close())
        self.process = subprocess.Popen(
            [python, str(WORKER), library],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env={**os.environ, **ENVIRONMENT, **({"OMP_NUM_THREADS": str(threads)} if threads else {})},
        )
        self.versions = self._read()["versions"]

    def _read(self, timeout_s: float | None = None) -> dict:
        if timeout_s is not None and not select.select([self.process.stdout], [], [], timeout_s)[0]:
            raise TimeoutError(f"no answer within {timeout_s:.0f} s")
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker exited with {self.process.wait()} (see {self.log.name})")
        return json.loads(line)

    def request(self, op: str, case: dict, timeout_s: float | None = None, **extra) -> dict:
        self.process.stdin.write(json.dumps({"op": op, "case": case, **extra}) + "\n")
        self.process.stdin.flush()
        return self._read(timeout_s)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.log.close()

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


class WorkerPool:
    """Running workers by key (a library, or a library and setting for one fresh worker per run).

    Workers start on first use; a worker that dies is dropped and its request answers an error.
    """

    def __init__(self, log_dir: Path, timeout_s: float | None = None, threads: int | None = None):
        self.log_dir, self.timeout_s, self.threads = log_dir, timeout_s, threads
        self.workers: dict[str, WorkerProcess] = {}
        self.versions: dict[str, dict] = {}

    def request(self, library: str, op: str, case: dict, key: str | None = None, **extra) -> dict:
        """One request to the worker `key` (default: the library's shared worker), started if needed.

        A request not answered within `timeout_s` kills the worker and answers `{"error": "timeout: ..."}`.
        """
        key = key or library
        try:
            if key not in self.workers:
                self.workers[key] = WorkerProcess(library, self.log_dir, self.threads)
                self.versions[library] = self.workers[key].versions
            return self.workers[key].request(op, case, timeout_s=self.timeout_s, **extra)
        except TimeoutError as error:
            self.workers.pop(key).kill()
            return {"error": f"timeout: {error}"}
        except (RuntimeError, BrokenPipeError, json.JSONDecodeError) as error:
            self.workers.pop(key, None)
            return {"error": f"worker failed: {error}"}

    def close(self, key: str) -> None:
        worker = self.workers.pop(key, None)
        if worker is not None:
            worker.close()

    def close_all(self) -> None:
        for key in list(self.workers):
            self.close(key)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close_all()
