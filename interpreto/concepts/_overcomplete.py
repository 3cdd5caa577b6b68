"""Importing overcomplete: a compatibility shim for matplotlib >= 3.9.

overcomplete 0.3 runs `matplotlib.cm.get_cmap(...)` when its package is imported (its visualization module), and
matplotlib 3.9 removed that function: `import overcomplete` (and any `from overcomplete.sae import ...`) then raises
`AttributeError`. Rather than capping matplotlib for every user, `import_overcomplete()` gives `matplotlib.cm` the
function it had (`matplotlib.colormaps.get_cmap`, its documented replacement) when it is missing, then imports
overcomplete. Nothing else of matplotlib is touched, and a matplotlib that still has `cm.get_cmap` is left as is.
"""

from __future__ import annotations

from types import ModuleType


def import_overcomplete() -> ModuleType:
    """Imports and returns the `overcomplete` package (after the shim above, where matplotlib needs it)."""
    import matplotlib
    import matplotlib.cm

    if not hasattr(matplotlib.cm, "get_cmap"):
        matplotlib.cm.get_cmap = matplotlib.colormaps.get_cmap
    import overcomplete

    return overcomplete
