"""What every gallery page says about its run: the command, the date, the machine and the time taken."""

from __future__ import annotations

import json
import platform
import sys
from datetime import date
from pathlib import Path

import torch

import interpreto

DOCS_GALLERY = Path(__file__).resolve().parents[1] / "docs" / "gallery"


def provenance(seconds: float) -> str:
    """One sentence: ``Measured by `python gallery/x.py ...` on DATE (machine, threads, versions), N s.``"""
    command = " ".join(["python", *(arg if " " not in arg else repr(arg) for arg in sys.argv)])
    machine = platform.processor() or platform.machine()
    threads = torch.get_num_threads()
    return (
        f"Measured by `{command}` on {date.today().isoformat()} ({machine}, {threads} thread{'s' if threads != 1 else ''}, "
        f"torch {torch.__version__}, interpreto {interpreto.__version__}); the run took {seconds:.0f} s."
    )


def write_page(name: str, markdown: str, data: dict | None = None, folder: Path = DOCS_GALLERY) -> Path:
    """Writes ``folder/name.md`` (and ``name.json`` with the measured numbers when given); returns the page."""
    folder.mkdir(parents=True, exist_ok=True)
    if data is not None:
        (folder / f"{name}.json").write_text(json.dumps(data, indent=2))
    page = folder / f"{name}.md"
    page.write_text(markdown)
    return page
