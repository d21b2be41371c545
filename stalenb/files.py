"""Result files are written atomically: all of it or nothing (docs/design.md §S6, reliability).

:func:`atomic_write` writes into a temporary file in the target's folder, flushes it to disk and
moves it over the target with ``os.replace``; a run killed half-way leaves the old file (or none)
and no partial one.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_write(target, mode: str = "w"):
    """``with atomic_write(path, "wb") as fh: ...`` — ``path`` appears only once ``fh`` is complete."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
