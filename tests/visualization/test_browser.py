"""A real browser renders our pages: injected markup in the explained text never runs.

Headless Chromium (Debian's `chromium`) loads a page whose elements and labels carry script payloads; the DOM
it dumps after load must keep the original title (a payload would set `document.title`), and a screenshot
must be written. Skipped only where chromium is not installed (`.ci/run` installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import torch

from interpreto import AttributionOutput, save_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
PAYLOADS = [
    "<script>document.title='pwned'</script>",
    "<img src=x onerror=\"document.title='pwned'\">",
    '"><svg onload="document.title=\'pwned\'">',
]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)


def _page(tmp_path):
    out = AttributionOutput(
        text=" ".join(PAYLOADS),
        elements=["fine", *PAYLOADS],
        attributions=torch.tensor([[0.5, -1.0, 0.25, 1.0]]),
        targets=[0],
        target_names=[PAYLOADS[1]],
        scores=torch.tensor([1.5]),
    )
    return save_html([out], tmp_path / "page.html", title="safe title")


def _chromium(tmp_path, *arguments: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_injected_scripts_do_not_run_in_a_browser(tmp_path):
    page = _page(tmp_path)
    result = _chromium(tmp_path, "--virtual-time-budget=2000", "--dump-dom", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    title = re.search(r"<title>(.*?)</title>", result.stdout, re.S)
    assert title is not None and title.group(1) == "safe title"
    assert "pwned" not in title.group(1)
    # the payloads are in the DOM as text, not as elements
    assert "<script>document.title" not in result.stdout
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in result.stdout


def test_screenshot_of_a_page(tmp_path):
    page = _page(tmp_path)
    shot = tmp_path / "page.png"
    result = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1000,600", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 5_000  # a rendered page, not a blank image
