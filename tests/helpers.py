"""Small shared fixtures-by-function for the test modules (no pytest magic needed)."""

from __future__ import annotations

import stalenb as sn

SMALL = dict(train_size=512, eval_size=64, eval_every=5)


def small(**kw) -> sn.Config:
    """A tiny MNIST run: 512 training digits, 64 evaluation digits."""
    args = {**SMALL, **kw}
    return sn.Config(**args)
