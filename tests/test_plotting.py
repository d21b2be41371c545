"""Legends outside the data: ``legend_right`` and ``legend_below`` keep every axes (data area, tick
labels, axis labels) free, and the saved figure keeps the whole legend."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.image import imread  # noqa: E402

from stalenb import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def curves(ax, n=3, prefix="curve"):
    """``n`` lines spanning the whole data area, each with a long legend label."""
    t = np.linspace(0, 1, 50)
    for k in range(n):
        ax.plot(t, t ** (k + 1), label=f"{prefix} {k}: a fairly long label, $|e_{{t-{k}}}|$")


def extents(fig):
    """(renderer, {axes: tight bbox incl. ticks and labels}) after a full draw."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return renderer, {ax: ax.get_tightbbox(renderer) for ax in fig.axes}


def overlaps(a, b):
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_legend_right_sits_beside_the_data_area_and_is_kept_when_saved(tmp_path, monkeypatch):
    fig, ax = plt.subplots(figsize=(4, 3))
    curves(ax)
    ax.set(xlabel="step $t$", ylabel=r"$\|w_t - w^*\|$")
    legend = plotting.legend_right(ax)
    assert ax.get_legend() is legend and len(legend.get_texts()) == 3
    renderer, _ = extents(fig)
    box, data = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
    assert box.x0 >= data.x1 and box.y1 <= data.y1 + 1     # right of the data area, top-aligned
    assert box.x1 > fig.bbox.x1                             # beyond the figure: only a tight bbox keeps it
    monkeypatch.setenv("STALENB_FIGURES", str(tmp_path))
    plotting.set_style()
    _, png = plotting.save_figure(fig, "99_legend_right")
    width = imread(png).shape[1]
    dpi = matplotlib.rcParams["savefig.dpi"]
    assert width >= (box.x1 - data.x0) / fig.dpi * dpi     # the saved image is wide enough for the legend


def test_legend_right_accepts_overrides():
    fig, ax = plt.subplots()
    curves(ax, 2)
    legend = plotting.legend_right(ax, fontsize="x-small", ncols=2)
    assert legend._ncols == 2 and legend.get_texts()[0].get_fontsize() < matplotlib.rcParams["font.size"]


def test_legend_below_frees_every_axes_and_fits_in_the_figure():
    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    for ax in axes:
        curves(ax)
        ax.set(xlabel="step $t$", title="a panel")
    assert fig.get_layout_engine() is None
    legend = plotting.legend_below(fig, axes[0], ncols=3)
    assert fig.get_layout_engine() is not None              # switched to a layout that makes room
    assert fig.legends == [legend] and len(legend.get_texts()) == 3
    renderer, boxes = extents(fig)
    box = legend.get_window_extent(renderer)
    for ax, tight in boxes.items():
        assert not overlaps(box, tight), ax.get_title()      # no data, tick label or axis label covered
        assert box.y1 <= tight.y0 + 1                         # below the axes
    assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and box.y0 >= fig.bbox.y0   # nothing clipped


def test_legend_below_merges_the_entries_of_several_axes_once_each():
    fig, axes = plt.subplots(1, 2)
    curves(axes[0], 2)
    curves(axes[1], 3)                                      # the same two labels and one more
    axes[1].axhline(0.5, label="only right")
    legend = plotting.legend_below(fig)
    labels = [t.get_text() for t in legend.get_texts()]
    assert len(labels) == len(set(labels)) == 4 and labels[-1] == "only right"
    assert legend._ncols == 4


def test_legend_below_places_two_legends_side_by_side_without_overlap():
    fig, axes = plt.subplots(1, 2, figsize=(10, 3), layout="constrained")
    curves(axes[0], 3, "left")
    curves(axes[1], 3, "right")
    left = plotting.legend_below(fig, axes[0], loc="outside lower left", ncols=1)
    right = plotting.legend_below(fig, axes[1], loc="outside lower right", ncols=1)
    renderer, boxes = extents(fig)
    a, b = left.get_window_extent(renderer), right.get_window_extent(renderer)
    assert not overlaps(a, b)
    for tight in boxes.values():
        assert not overlaps(a, tight) and not overlaps(b, tight)
    assert [t.get_text().split(" ")[0] for t in left.get_texts()] == ["left"] * 3
