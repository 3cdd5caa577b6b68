"""A newcomer following docs/getting-started.md literally gets the output the page shows.

The page's Python blocks run, in order, as one script in a fresh interpreter in an empty folder (as someone
typing them into a new session would); what each block prints is compared with the ``text`` block under it.
Words must be equal; a number may differ by 3% of the largest number on its line, plus half a unit of its last
shown digit (another CPU kind rounds differently).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "getting-started.md"
MARKER = "=== end of block ==="
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
ELLIPSIS = "..."


def page_examples(text: str) -> list[tuple[str, str | None]]:
    """(python block, the text block right after it or None) in page order."""
    pattern = re.compile(r"```python\n(.*?)```\s*(?:```text\n(.*?)```)?", re.S)
    return [(match.group(1), match.group(2)) for match in pattern.finditer(text)]


def number_tolerance(shown: str, line_scale: float) -> float:
    decimals = len(shown.split(".")[1]) if "." in shown and "e" not in shown.lower() else 0
    return 0.03 * line_scale + 0.5 * 10.0**-decimals


def line_matches(shown: str, printed: str) -> bool:
    """Same words; numbers within tolerance. ``...`` in the shown line stands for any text."""
    shown_numbers, printed_numbers = NUMBER.findall(shown), NUMBER.findall(printed)
    shown_words = NUMBER.sub("#", shown).split(ELLIPSIS)
    printed_words = NUMBER.sub("#", printed)
    pattern = ".*".join(re.escape(part) for part in shown_words)
    if not re.fullmatch(pattern, printed_words):
        return False
    if ELLIPSIS in shown:  # numbers after an ellipsis are not compared one to one
        printed_numbers = printed_numbers[: len(shown_numbers)]
    if len(shown_numbers) != len(printed_numbers):
        return False
    scale = max((abs(float(number)) for number in shown_numbers), default=0.0)
    return all(
        abs(float(a) - float(b)) <= number_tolerance(a, scale)
        for a, b in zip(shown_numbers, printed_numbers, strict=True)
    )


def test_line_matching_rules():
    assert line_matches("logit 2.87", "logit 2.88")
    assert line_matches("x +0.315 and 2.87", "x +0.300 and 2.87")  # 3% of 2.87 covers 0.015
    assert not line_matches("logit 2.87", "logit 3.10")
    assert not line_matches("['positive']", "['negative']")
    assert line_matches("[' Red', ...]", "[' Red', ',', ' blue']")
    assert not line_matches("True True", "True False")


@pytest.fixture(scope="module")
def printed_blocks(tmp_path_factory) -> list[tuple[str, str | None, str]]:
    examples = page_examples(PAGE.read_text())
    script = "\n".join(f"{code}\nprint({MARKER!r}, flush=True)\n" for code, _ in examples)
    folder = tmp_path_factory.mktemp("newcomer")
    (folder / "getting_started.py").write_text(script)
    run = subprocess.run(
        [sys.executable, "getting_started.py"], cwd=folder, capture_output=True, text=True, timeout=900
    )
    assert run.returncode == 0, f"the page's code failed:\n{run.stderr[-3000:]}"
    outputs = run.stdout.split(MARKER + "\n")[: len(examples)]
    return [(code, shown, printed) for (code, shown), printed in zip(examples, outputs, strict=True)]


@pytest.mark.slow
def test_getting_started_prints_what_the_page_shows(printed_blocks):
    assert len(printed_blocks) >= 5
    assert sum(shown is not None for _, shown, _ in printed_blocks) >= 5
    for code, shown, printed in printed_blocks:
        if shown is None:
            assert printed.strip() == "", f"a block without a shown output printed:\n{printed}"
            continue
        shown_lines, printed_lines = shown.strip().splitlines(), printed.strip().splitlines()
        assert len(shown_lines) == len(printed_lines), (
            f"block\n{code}\nprinted\n{printed}\nthe page shows\n{shown}"
        )
        for shown_line, printed_line in zip(shown_lines, printed_lines, strict=True):
            assert line_matches(shown_line.strip(), printed_line.strip()), (
                f"block\n{code}\nprinted  {printed_line!r}\npage says {shown_line!r}"
            )
