"""Where things live: repo root, data, figures, cache, build; and the quick-mode switch.

Every path in stalenb comes from here, never from the current working directory: papermill runs
notebooks in the launching directory, nbval in the notebook's directory, and both must find the
same data and write the same figures (see ``reference/style.md``, "traps of the toolchain").

Environment variables (all optional):

- ``STALENB_ROOT``: the project root (default: the folder holding ``pyproject.toml`` above this
  package, else ``~/.cache/stalenb`` for an installed, non-editable package);
- ``STALENB_DATA``, ``STALENB_FIGURES``, ``STALENB_CACHE``: override one folder each;
- ``STALENB_QUICK=1``: quick profile (every notebook shrinks to minutes on 2 cores).
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def repo_root() -> Path:
    """The project root: ``$STALENB_ROOT``, else the folder with ``pyproject.toml`` above us."""
    env = os.environ.get("STALENB_ROOT")
    if env:
        return Path(env).resolve()
    candidate = _PACKAGE.parent
    if (candidate / "pyproject.toml").is_file():
        return candidate
    return Path.home() / ".cache" / "stalenb"


def _folder(env: str, name: str) -> Path:
    value = os.environ.get(env)
    return Path(value).resolve() if value else repo_root() / name


def data_dir() -> Path:
    """Datasets (``data/``); MNIST lands in ``data/MNIST/raw``."""
    return _folder("STALENB_DATA", "data")


def figures_dir() -> Path:
    """Figures written by the notebooks (``figures/``), created on demand."""
    path = _folder("STALENB_FIGURES", "figures")
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Finished simulation runs (``cache/``), created on demand."""
    path = _folder("STALENB_CACHE", "cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_dir() -> Path:
    """Executed notebook copies and other build products (``build/``), created on demand."""
    path = repo_root() / "build"
    path.mkdir(parents=True, exist_ok=True)
    return path


def notebooks_dir() -> Path:
    """The ordered notebooks (``notebooks/``)."""
    return repo_root() / "notebooks"


def shared_mnist_dir() -> Path:
    """The offline MNIST-10k split beside the project (``../shared/data/mnist10k``)."""
    return repo_root().parent / "shared" / "data" / "mnist10k"


def quick() -> bool:
    """True when the quick profile is on (``STALENB_QUICK`` set to 1/true/yes)."""
    return os.environ.get("STALENB_QUICK", "").strip().lower() in {"1", "true", "yes", "on"}


def pick(full, quick_value):
    """``quick_value`` in quick mode, ``full`` otherwise: the one way notebooks shrink loops."""
    return quick_value if quick() else full
