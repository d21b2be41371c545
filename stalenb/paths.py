"""Where things live: repo root, data, figures, cache, build; and the quick-mode switch.

Every path in stalenb comes from here, never from the current working directory: papermill runs
notebooks in the launching directory, nbval in the notebook's directory, and both must find the
same data and write the same figures (see ``docs/design.md`` (appendix), "traps of the toolchain").

Environment variables (all optional):

- ``STALENB_ROOT``: the project root (default: the folder holding ``pyproject.toml`` above this
  package, else ``~/.cache/stalenb`` for an installed, non-editable package);
- ``STALENB_DATA``, ``STALENB_FIGURES``, ``STALENB_CACHE``: override one folder each;
- ``STALENB_QUICK=1``: quick profile (every notebook shrinks to minutes on 2 cores).

Whose folders: the results go with the code that makes them. ``cache/``, ``build/`` and
``figures/`` belong to the checkout whose ``stalenb`` package is imported, not to the directory
you run in. The two differ when one ``.venv`` serves two checkouts: its editable install
(``pip install -e``) imports the package of the checkout it was installed from, wherever you
start Python (a notebook kernel starts in ``notebooks/``, where the other checkout's package is
not on the path). Writing that code's runs into the checkout you stand in would put figures made
by one checkout's code into another, silently; so the folders stay with the imported code and,
when the working directory lies inside another stalenb checkout, :func:`repo_root` says so once
per process (a ``UserWarning`` naming both folders and the cure: ``pip install -e`` that
checkout into the environment, or give it its own ``.venv``; ``STALENB_ROOT`` moves only the
folders). ``$STALENB_ROOT`` set means the choice was made: no warning.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_NOTED: set = set()  # (package root, other checkout) pairs already warned about in this process


def repo_root() -> Path:
    """The project root: ``$STALENB_ROOT``, else the checkout holding this package (the folder with
    ``pyproject.toml`` above it; ``~/.cache/stalenb`` for an installed, non-editable package). Warns
    once when the working directory lies in another stalenb checkout (see the module docstring)."""
    env = os.environ.get("STALENB_ROOT")
    if env:
        return Path(env).resolve()
    candidate = _PACKAGE.parent
    root = candidate if (candidate / "pyproject.toml").is_file() else Path.home() / ".cache" / "stalenb"
    _note_other_checkout(root)
    return root


def _note_other_checkout(root: Path) -> None:
    try:
        here = os.getcwd()
    except OSError:  # the working directory was deleted
        return
    other = checkout_of(here)
    if other is None or other == root or (root, other) in _NOTED:
        return
    _NOTED.add((root, other))
    warnings.warn(
        f"stalenb is imported from {_PACKAGE}, so its cache/, build/ and figures/ are under {root}, "
        f"not under the checkout you run in, {other}. To run that checkout's code and keep its results "
        f"there, install it into this environment (pip install -e {other}) or give it its own .venv; "
        f"STALENB_ROOT={other} would move only the folders.", UserWarning, stacklevel=3)


@functools.lru_cache(maxsize=32)
def checkout_of(folder: str) -> Path | None:
    """The stalenb checkout holding ``folder`` (the nearest folder at or above it with
    ``pyproject.toml`` and ``stalenb/paths.py``), or ``None``."""
    for candidate in (Path(folder).resolve(), *Path(folder).resolve().parents):
        if (candidate / "pyproject.toml").is_file() and (candidate / "stalenb" / "paths.py").is_file():
            return candidate
    return None


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
