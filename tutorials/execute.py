"""Execute the tutorial notebooks with nbclient and write the executed copies for the docs site.

Usage: ``python tutorials/execute.py [NOTEBOOK ...] [--out docs/tutorials] [--timeout 900]``. With no notebook,
every ``tutorials/*.ipynb`` runs, in name order. Each source notebook must be committed without outputs; the
executed copy (outputs, figures) goes to ``--out`` with the wall time of the run in its metadata, and the
times are printed as a table. Any cell error stops with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

TUTORIALS = Path(__file__).resolve().parent


def has_outputs(notebook: nbformat.NotebookNode) -> bool:
    """Whether any code cell keeps outputs or an execution count (sources are committed stripped)."""
    return any(
        cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
        for cell in notebook.cells
    )


def execute(path: Path, out_dir: Path, timeout: int) -> float:
    """Run one notebook in its own folder; write the executed copy to ``out_dir``; return the seconds taken."""
    notebook = nbformat.read(path, as_version=4)
    if has_outputs(notebook):
        raise SystemExit(f"{path}: commit notebooks without outputs (clear them, then save)")
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    notebook.metadata["interpreto"] = {"executed_seconds": round(seconds, 1)}
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, out_dir / path.name)
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=TUTORIALS.parent / "docs" / "tutorials")
    parser.add_argument("--timeout", type=int, default=900, help="seconds allowed per cell")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(TUTORIALS.glob("*.ipynb"))
    if not paths:
        raise SystemExit("no notebook to run")
    times = {}
    for path in paths:
        print(f"running {path.name} ...", flush=True)
        times[path.name] = execute(path, args.out, args.timeout)
        print(f"  {times[path.name]:.0f} s", flush=True)
    print("\n| notebook | seconds |\n|---|---|")
    for name, seconds in times.items():
        print(f"| {name} | {seconds:.0f} |")


if __name__ == "__main__":
    sys.exit(main())
