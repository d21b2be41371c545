"""Tiny helpers to write the theory notebooks (01–04) with nbformat; not part of the package.

Run ``python notebooks/_src/theory_notebooks.py`` to regenerate them (outputs stripped).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat import v4

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
NOTEBOOKS = Path(__file__).resolve().parent.parent


def md(text: str):
    return v4.new_markdown_cell(text.strip("\n"))


def code(text: str, parameters: bool = False):
    meta = {"tags": ["parameters"]} if parameters else {}
    return v4.new_code_cell(text.strip("\n"), metadata=meta)


def write(name: str, cells) -> Path:
    nb = v4.new_notebook(cells=list(cells))
    for i, cell in enumerate(nb.cells):  # stable ids, as nbstripout writes them
        cell.id = str(i)
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.metadata["language_info"] = {"name": "python"}
    path = NOTEBOOKS / name
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return path


def write_cells(name: str, specs) -> Path:
    """Write from ``("md" | "code" | "params", text)`` pairs (the style of nb05–nb07)."""
    make = {"md": md, "code": code, "params": lambda text: code(text, parameters=True)}
    return write(name, [make[kind](text) for kind, text in specs])
