"""MNIST through torchvision, as normalised tensors, and the seeded mini-batch stream.

Normalisation 0.1307 / 0.3081 (the usual MNIST mean / std, as in the poster's ps_pytorch code).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from .. import paths

MEAN, STD = 0.1307, 0.3081
RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _missing_files(root: Path) -> list[str]:
    raw = root / "MNIST" / "raw"
    return [f for f in RAW_FILES if not ((raw / f).is_file() or (raw / f"{f}.gz").is_file())]


def mnist(root=None, *, train: bool = True, download: bool = True):
    """The MNIST training (``train=True``) or test set as a ``torchvision.datasets.MNIST``.

    Args:
        root: folder holding ``MNIST/raw/`` (default: the project's ``data/``).
        train: training split if True, else the test split.
        download: fetch the files with torchvision when they are missing.

    Raises:
        FileNotFoundError: the files are missing (and could not be downloaded); the message names
            the folder and the four expected IDX files.
        ValueError: a file is present but unreadable (truncated or corrupt).
    """
    import torchvision  # here, not at import: most notebooks never load MNIST, and it is slow to import

    root = Path(root) if root is not None else paths.data_dir()
    missing = _missing_files(root)
    if missing and download:
        try:
            return torchvision.datasets.MNIST(str(root), train=train, download=True)
        except Exception as exc:  # no network, mirror down, ...
            raise FileNotFoundError(
                f"MNIST could not be downloaded into {root / 'MNIST' / 'raw'} ({exc}). Offline, "
                f"place the four IDX files there: {', '.join(RAW_FILES)}"
            ) from exc
    if missing:
        raise FileNotFoundError(
            f"MNIST files missing in {root / 'MNIST' / 'raw'}: {', '.join(missing)} "
            f"(expected all four: {', '.join(RAW_FILES)}; or pass download=True)"
        )
    try:
        return torchvision.datasets.MNIST(str(root), train=train, download=False)
    except Exception as exc:
        raise ValueError(
            f"MNIST files in {root / 'MNIST' / 'raw'} are unreadable ({exc}); "
            f"replace {', '.join(RAW_FILES)}"
        ) from exc


@functools.lru_cache(maxsize=4)
def mnist_tensors(root: str | None = None, *, train: bool = True, download: bool = True):
    """``(X, y)``: images as float32 ``(N, 1, 28, 28)`` normalised by 0.1307 / 0.3081, labels int64.

    ``train`` and ``download`` as in :func:`mnist` (keyword-only). Cached per arguments: callers
    share the tensors and must not modify them.
    """
    ds = mnist(root, train=train, download=download)
    x = ds.data.to(torch.float32).div_(255.0).sub_(MEAN).div_(STD).unsqueeze(1)
    return x.contiguous(), ds.targets.to(torch.int64).clone()


class BatchStream:
    """Seeded stream of mini-batch indices: epochs of random permutations, sliced in order.

    ``next(b)`` returns the next ``b`` indices. Every gradient of a run draws its batch from this
    one stream in the order the schedule lists them, so a run is fully determined by its seed.
    """

    def __init__(self, n: int, seed: int):
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.n = n
        self._gen = torch.Generator().manual_seed(int(seed))
        self._perm = torch.randperm(n, generator=self._gen)
        self._pos = 0

    def next(self, b: int) -> torch.Tensor:
        out = []
        while b > 0:
            if self._pos == self.n:
                self._perm = torch.randperm(self.n, generator=self._gen)
                self._pos = 0
            take = min(b, self.n - self._pos)
            out.append(self._perm[self._pos : self._pos + take])
            self._pos += take
            b -= take
        return out[0] if len(out) == 1 else torch.cat(out)
