"""Small shared fixtures-by-function for the test modules (no pytest magic needed)."""

from __future__ import annotations

import stalenb as sn

SMALL = dict(train_size=512, eval_size=64, eval_every=5)


def small(**kw) -> sn.Config:
    """A tiny MNIST run: 512 training digits, 64 evaluation digits."""
    args = {**SMALL, **kw}
    return sn.Config(**args)


def notebook(folder, name: str, code: str, params: str = "x = 1  # a number"):
    """Write ``folder/name``: a ``parameters``-tagged cell, then ``code``; kernelspec ``python3``."""
    from nbformat import v4, write

    nb = v4.new_notebook(cells=[v4.new_code_cell(params, metadata={"tags": ["parameters"]}),
                                v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    write(nb, folder / name)
    return folder / name
