"""Finished runs on disk, keyed by (config, seed, package version, data folder, code).

Each run is one ``.npz`` file (numeric columns only, loaded with ``allow_pickle=False``; never
pickle) written to a temporary file in the same folder and moved into place with ``os.replace``,
so a killed run leaves either nothing or a complete file. A file that fails to load (truncated,
corrupt, or written for another key) is deleted and the run recomputed.

The key includes :func:`code_hash`, a hash of the source of every module a run's numbers depend
on: after an edit to the engine, the compressors, the server, the gradients, … every cached run is
recomputed, so a figure or verdict never comes from code that no longer exists. Modules that only
present or organise results (:data:`PRESENTATION`) are left out, so that editing a plot or a
widget keeps the cache warm.
"""

from __future__ import annotations

import functools
import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from . import paths
from .files import atomic_write

FORMAT = 1
PACKAGE = Path(__file__).resolve().parent
#: Modules (paths relative to the package) that never change a run's numbers: plots, widgets,
#: the notebook runner, the benchmark, the ledger, grid bookkeeping, paths and file helpers.
PRESENTATION = frozenset({
    "_kernel_stub.py", "bench.py", "cache.py", "claims.py", "experiments.py", "files.py", "kernels.py",
    "paths.py", "plotting.py", "report.py", "reproduce.py", "speedup.py", "tuning.py", "widgets.py",
})


def code_hash(package: Path | None = None) -> str:
    """SHA-256 (first 16 hex digits) of the sources of every numerical module of ``package``.

    Every ``*.py`` file under the package folder except :data:`PRESENTATION`, read as bytes in
    sorted path order. For this package (``package=None``) it is computed once per process.
    """
    return _package_hash() if package is None else _hash_sources(Path(package))


@functools.lru_cache(maxsize=1)
def _package_hash() -> str:
    return _hash_sources(PACKAGE)


def source_hash() -> str:
    """SHA-256 (first 16 hex digits) of every module of the package, presentation included (what
    a notebook's figures and tables depend on; :mod:`stalenb.reproduce` keys executed notebooks on it)."""
    return _hash_sources(PACKAGE, exclude=())


def _hash_sources(package: Path, exclude=PRESENTATION) -> str:
    h = hashlib.sha256()
    for path in sorted(Path(package).rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if rel in exclude:
            continue
        h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def key(config, extra: dict | None = None) -> str:
    """Content hash of the configuration, the package version, the data folder and the code."""
    from . import __version__

    root = config.data_root if config.data_root is not None else str(paths.data_dir())
    payload = {"config": config.to_dict(), "version": __version__, "format": FORMAT,
               "data": str(Path(root).resolve()), "code": code_hash(), "extra": extra or {}}
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def path_for(k: str) -> Path:
    return paths.cache_dir() / f"run-{k}.npz"


def save(k: str, frames: dict[str, pd.DataFrame], meta: dict) -> Path:
    """Write ``frames`` (name → DataFrame) and ``meta`` atomically under key ``k``."""
    arrays = {"__meta__": np.frombuffer(json.dumps({**meta, "key": k}).encode(), dtype=np.uint8)}
    for name, df in frames.items():
        arrays[f"{name}/__columns__"] = np.frombuffer(json.dumps(list(df.columns)).encode(), dtype=np.uint8)
        for col in df.columns:
            arrays[f"{name}/{col}"] = df[col].to_numpy()
    target = path_for(k)
    with atomic_write(target, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return target


def load(k: str):
    """``(frames, meta)`` for key ``k``, or ``None`` if absent or unreadable (then deleted)."""
    target = path_for(k)
    if not target.is_file():
        return None
    try:
        with np.load(target, allow_pickle=False) as z:
            meta = json.loads(bytes(z["__meta__"]).decode())
            if meta.get("key") != k:
                raise ValueError("key mismatch")
            names = {n.split("/", 1)[0] for n in z.files if "/" in n}
            frames = {}
            for name in names:
                cols = json.loads(bytes(z[f"{name}/__columns__"]).decode())
                frames[name] = pd.DataFrame({c: z[f"{name}/{c}"] for c in cols}, columns=cols)
        return frames, meta
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError):
        target.unlink(missing_ok=True)
        return None
