"""The Python examples of the docs run as written (offline models only)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = [
    "explainers.md",
    "evaluation.md",
    "split_points.md",
    "concepts.md",
    "concepts_interpret.md",
]


@pytest.mark.parametrize("page", PAGES)
def test_docs_examples_run(page, tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)  # examples write their files here
    namespace: dict = {}
    import matplotlib.pyplot as plt

    open_figures = set(plt.get_fignums())
    try:
        for block in blocks:
            exec(compile(block, f"{page}", "exec"), namespace)  # noqa: S102 - our own documentation
    finally:  # figures an example opened (result.plot()) must not leak into other tests
        for number in set(plt.get_fignums()) - open_figures:
            plt.close(number)
