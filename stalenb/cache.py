"""Finished runs on disk, keyed by what their numbers depend on.

Each run is one ``.npz`` file (numeric columns only, loaded with ``allow_pickle=False``; never
pickle) written to a temporary file in the same folder and moved into place with ``os.replace``,
so a killed run leaves either nothing or a complete file. A file that fails to load (truncated,
corrupt, or written for another key) is deleted and the run recomputed.

The key (:func:`key`) holds the configuration (which includes the seed), the package version,
:func:`code_hash` — a hash of the sources of the simulator folder ``stalenb/sim/``, plus any folder or
module the caller names (``distributed`` for real runs, ``rates.py`` for the rate experiment) — and
:func:`data_fingerprint`, a hash of the *content* of the four MNIST files. So an edit to the engine,
the compressors, the server, … recomputes every cached run, an edit to a plot, a widget, the
theory or the notebook runner keeps them all, and replacing the digits under the same folder (the
8k/2k offline split by the full 60k set) never serves runs made on the old ones. There is no
hand-kept list of exceptions: what lives in ``stalenb/sim/`` counts, what lives elsewhere does not.
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

FORMAT = 2
PACKAGE = Path(__file__).resolve().parent
#: The folder (relative to the package) whose sources every cached run depends on.
SIMULATOR = "sim"


def code_hash(*extra: str, package: Path | None = None) -> str:
    """SHA-256 (first 16 hex digits) of the simulator's sources and of ``extra``.

    Every ``*.py`` file under ``package/sim`` and under each of ``extra`` (folders or modules,
    relative to the package: ``"distributed"``, ``"rates.py"``), read as bytes in sorted path order.
    ``package`` defaults to this package (then the hash is computed once per process).

    Example:
        >>> code_hash() != code_hash("distributed")
        True
    """
    parts = tuple(sorted({SIMULATOR, *extra}))
    if package is None:
        return _package_hash(parts)
    return _hash_sources(Path(package), parts)


@functools.lru_cache(maxsize=None)
def _package_hash(parts: tuple[str, ...]) -> str:
    return _hash_sources(PACKAGE, parts)


def source_hash() -> str:
    """SHA-256 (first 16 hex digits) of every module of the package (what a notebook's figures and
    tables depend on; :mod:`stalenb.repro.reproduce` keys executed notebooks on it)."""
    return _hash_sources(PACKAGE, (".",))


def _hash_sources(package: Path, parts) -> str:
    h = hashlib.sha256()
    files = set()
    for part in parts:
        target = package / part
        if not target.exists():
            raise FileNotFoundError(f"no module or folder {part!r} in {package}")
        files.update([target] if target.is_file() else target.rglob("*.py"))
    for path in sorted(files):
        h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def data_fingerprint(root=None, fetch: bool = True) -> str | None:
    """SHA-256 (first 16 hex digits) of the content of the four MNIST files under ``root/MNIST/raw``.

    ``root`` defaults to :func:`stalenb.paths.data_dir`. The plain IDX file is hashed where present,
    else its ``.gz``. Missing files are first fetched by :func:`stalenb.data.mnist` (which raises a
    clear ``FileNotFoundError`` offline), as the run itself would; with ``fetch=False`` the result is
    then ``None``. Each file is hashed once per process for a given size and modification time, so
    replacing the digits changes the result.
    """
    from .sim import data

    root = Path(root) if root is not None else paths.data_dir()
    raw = root / "MNIST" / "raw"
    files = [_idx_file(raw, name) for name in data.RAW_FILES]
    if None in files:
        if not fetch:
            return None
        data.mnist(root, train=True, download=True)
        files = [_idx_file(raw, name) for name in data.RAW_FILES]
    return _hash_files(tuple((str(f.resolve()), st.st_size, st.st_mtime_ns) for f in files for st in [f.stat()]))


def _idx_file(raw: Path, name: str) -> Path | None:
    for candidate in (raw / name, raw / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


@functools.lru_cache(maxsize=16)
def _hash_files(stats: tuple) -> str:
    h = hashlib.sha256()
    for path, _, _ in stats:
        h.update(Path(path).name.encode() + b"\0")
        with open(path, "rb") as fh:
            h.update(hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()[:16]


def key(config, extra: dict | None = None, *, code: tuple[str, ...] = (), data: bool = True) -> str:
    """Content hash of a run: ``config``, the package version, :func:`code_hash` (``*code``), the
    MNIST content (:func:`data_fingerprint` of ``config.data_root``; leave it out with ``data=False``
    for runs that never read MNIST) and ``extra`` (what else the caller's result depends on)."""
    from . import __version__

    settings = {k: v for k, v in config.to_dict().items() if k != "data_root"}  # the content counts, not the path
    payload = {"config": settings, "version": __version__, "format": FORMAT,
               "data": data_fingerprint(config.data_root) if data else None, "code": code_hash(*code),
               "extra": extra or {}}
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
                frames[name] = pd.DataFrame({col: z[f"{name}/{col}"] for col in cols}, columns=cols)
        return frames, meta
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError):
        target.unlink(missing_ok=True)
        return None
