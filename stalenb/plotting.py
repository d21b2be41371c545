"""One figure style and one way to save figures (PDF + PNG into ``figures/``).

Figures carry their notebook's prefix (``01_curvature.pdf``); PDFs are written without a
creation date so that regenerated files are byte-identical (``SOURCE_DATE_EPOCH`` is also set by
the reproduce runner).
"""

from __future__ import annotations

import matplotlib
import numpy as np
import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.axes import Axes

from . import paths

PALETTE = "colorblind"


def set_style() -> None:
    """The stalenb look: seaborn ``whitegrid``, colour-blind palette, compact sizes."""
    sns.set_theme(style="whitegrid", palette=PALETTE, context="notebook")
    matplotlib.rcParams.update(
        {
            "figure.figsize": (6.4, 3.8),
            "figure.dpi": 100,
            "savefig.dpi": 150,
            "savefig.bbox": "tight",
            "axes.titlesize": "medium",
            "legend.fontsize": "small",
        }
    )


def save_figure(fig, name: str) -> tuple:
    """Write ``fig`` as ``figures/<name>.pdf`` and ``.png``; return the two paths.

    ``name`` should start with the notebook's number, e.g. ``"01_curvature"``.
    """
    if not name or "/" in name or name.endswith((".pdf", ".png")):
        raise ValueError(f"name must be a bare figure name like '01_curvature', got {name!r}")
    folder = paths.figures_dir()
    pdf, png = folder / f"{name}.pdf", folder / f"{name}.png"
    fig.savefig(pdf, metadata={"CreationDate": None, "ModDate": None})
    fig.savefig(png, metadata={"Software": None})
    return pdf, png


def legend_right(ax, **kw):
    """``ax``'s legend outside its data area, to the right of the axes (top-aligned).

    The legend lies outside the figure's axes, so it must be kept when the figure is cropped:
    :func:`save_figure` (``savefig.bbox = "tight"`` of :func:`set_style`), the notebook's inline
    display (``bbox_inches="tight"``) and ``layout="constrained"`` all make room for it.
    """
    kw = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0, **kw}
    return ax.legend(**kw)


def legend_below(fig, axes=None, **kw):
    """One legend for ``fig`` under its axes: the entries of ``axes`` (one axes or several; default
    every axes of ``fig``), each label once, in a row of up to ``ncols`` columns (default 4).

    Uses the constrained layout's ``"outside lower center"`` placement (the layout makes room, so
    the legend never covers an axes, its tick labels or its axis label); a figure without a layout
    engine is switched to the constrained layout first.
    """
    if fig.get_layout_engine() is None:
        fig.set_layout_engine("constrained")
    chosen = fig.axes if axes is None else [axes] if isinstance(axes, Axes) else list(np.ravel(axes))
    entries = {}
    for ax in chosen:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    kw = {"loc": "outside lower center", "ncols": min(4, max(1, len(entries))), **kw}
    return fig.legend(list(entries.values()), list(entries), **kw)


def digit_grid(images, labels, rows: int = 4, cols: int = 10, gap: int = 10):
    """A grid of MNIST digits (``images``: (N, 28, 28) uint8 or float) with their labels above them.

    One image (the digits tiled into a mosaic, ``gap`` white pixels above each for its label)
    instead of one axes per digit: the same picture at a fraction of the drawing time.
    """
    imgs = np.asarray(images[: rows * cols], dtype=float)
    n, h, w = imgs.shape
    tiles = np.zeros((rows * cols, h + gap, w + 2))
    tiles[:n, gap:, 1:-1] = imgs
    mosaic = tiles.reshape(rows, cols, h + gap, w + 2).transpose(0, 2, 1, 3).reshape(rows * (h + gap), cols * (w + 2))
    fig, ax = plt.subplots(figsize=(cols * 0.9, rows * 1.0))
    ax.imshow(mosaic, cmap="gray_r", interpolation="nearest")
    for i, lab in enumerate(labels[:n]):
        r, c = divmod(i, cols)
        ax.text(c * (w + 2) + (w + 2) / 2, r * (h + gap) + gap / 2, str(int(lab)), fontsize=8, ha="center", va="center")
    ax.axis("off")
    fig.tight_layout()
    return fig


def learning_curves(frame, x: str = "step", y: str = "test_acc", hue: str = "label", ax=None, **kw):
    """Line plot of ``y`` against ``x`` per ``hue`` from a tidy frame (seaborn ``lineplot``; its
    bootstrapped confidence band is seeded, ``seed=0``, so the figure is the same on every run)."""
    if ax is None:
        _, ax = plt.subplots()
    sns.lineplot(data=frame, x=x, y=y, hue=hue, ax=ax, seed=kw.pop("seed", 0), **kw)
    return ax.figure


def staleness_hist(updates, hue: str | None = None, ax=None, **kw):
    """Histogram of the staleness of applied gradients (``run.updates``), one bar per value."""
    if ax is None:
        _, ax = plt.subplots()
    applied = updates[updates["applied"]] if "applied" in updates else updates
    sns.histplot(data=applied, x="staleness", hue=hue, discrete=True, stat="probability",
                 common_norm=False, ax=ax, **kw)
    return ax.figure
