"""Where things live: repo root, data, figures, cache, build; and the quick-mode switch.

Every path in stalenb comes from here, never from the current working directory: papermill runs
notebooks in the launching directory, nbval in the notebook's directory, and both must find the
same data and write the same figures (see ``docs/design.md`` (appendix), "traps of the toolchain").

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


def figures_dir(profile: str | None = None) -> Path:
    """Figures written by the notebooks, created on demand.

    The paper profile writes ``figures/`` (committed: the repository shows the results); the quick
    profile (``STALENB_QUICK=1``: ``make test``, CI) writes ``build/quick/figures/`` so that a test
    run never overwrites the committed paper-profile figures and ledger. ``profile`` ("paper" or
    "quick") picks one explicitly; ``STALENB_FIGURES`` overrides both.
    """
    if profile not in (None, "paper", "quick"):
        raise ValueError(f"profile must be 'paper' or 'quick', got {profile!r}")
    value = os.environ.get("STALENB_FIGURES")
    if value:
        path = Path(value).resolve()
    elif (profile or ("quick" if quick() else "paper")) == "quick":
        path = repo_root() / "build" / "quick" / "figures"
    else:
        path = repo_root() / "figures"
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


def quick() -> bool:
    """True when the quick profile is on (``STALENB_QUICK`` set to 1/true/yes)."""
    return os.environ.get("STALENB_QUICK", "").strip().lower() in {"1", "true", "yes", "on"}


def pick(full, quick_value):
    """``quick_value`` in quick mode, ``full`` otherwise: the one way notebooks shrink loops."""
    return quick_value if quick() else full
