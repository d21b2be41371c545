"""Slider panels around plain functions (ipywidgets), for the notebooks' interactive cells.

The rule (``docs/design.md`` (appendix), habit 9, after the PythonDataScienceHandbook's
``plot_svm(N)`` then ``interact(plot_svm, N=(10, 200))``): a notebook first calls the plain
plotting or experiment function statically in its own cell, then offers the same function behind
sliders. Three helpers cover the cases:

- :func:`panel` — sliders that re-run a cheap function on every change (theory plots), or, with
  ``run_button=True``, only when "Run" is pressed (anything that trains);
- :func:`browse` — sliders that pick among results computed (and cached) beforehand, so moving a
  slider never trains;
- :func:`progress` — the progress bar for long work inside a panel (``tqdm.auto``: a widget bar in
  JupyterLab, plain text elsewhere, silent with ``TQDM_DISABLE=1``).

Example:
    >>> import stalenb.widgets as sw
    >>> def square(a=2.0):
    ...     return a * a
    >>> ui = sw.panel(square, a=(0.0, 4.0, 0.5))
    >>> ui.children[0].value = 3.0
    >>> ui.result
    9.0
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping

import ipywidgets as widgets
import pandas as pd
from IPython import get_ipython
from IPython.display import display
from tqdm.auto import tqdm

__all__ = ["panel", "browse", "choices", "progress", "controls"]

_SLIDERS = (widgets.IntSlider, widgets.FloatSlider, widgets.FloatLogSlider,
            widgets.SelectionSlider, widgets.IntRangeSlider, widgets.FloatRangeSlider,
            widgets.SelectionRangeSlider)


def _show_figure(result) -> None:
    """Display a returned matplotlib figure (or axes) in the panel's output, then close it.

    Closing keeps one figure per call alive instead of one per slider tick, and stops the inline
    backend from showing the same figure a second time.
    """
    from matplotlib.figure import Figure

    fig = getattr(result, "figure", None) if not isinstance(result, Figure) else result
    if not isinstance(fig, Figure):
        return
    if get_ipython() is not None:
        display(fig)
    import matplotlib.pyplot as plt

    plt.close(fig)


def _readable(options):
    """Dropdown options as (label, value) pairs: a tuple of names is shown joined by ", " (not its repr)."""
    if not isinstance(options, list) or not options or not all(isinstance(o, tuple) for o in options):
        return options
    if all(len(o) == 2 and isinstance(o[0], str) and not isinstance(o[1], str) for o in options):
        return options   # already (label, value) pairs
    return [(", ".join(map(str, o)), o) for o in options]


def panel(fn, run_button: bool = False, *, continuous_update: bool = False, labels: Mapping | None = None,
          **controls) -> widgets.interactive:
    """``ipywidgets.interactive(fn, **controls)``; with ``run_button`` it only runs on a click.

    Args:
        fn: the plain function the notebook already called statically. It may return a
            matplotlib figure (shown in the panel and closed) or draw with pyplot.
        run_button: add a "Run" button; ``fn`` then runs only when it is pressed (never at
            creation, never on a slider change). Use it for anything that trains.
        continuous_update: re-run while a slider is dragged (default: once, when released).
        labels: ``{argument: label}`` shown instead of the argument names (with symbol and unit,
            e.g. ``{"beta0_times_b": "β₀ (× 1/b)"}``); every control gets room for its whole label.
        **controls: ipywidgets (``FloatSlider`` …, :func:`choices`) or the abbreviations
            ``interact`` accepts (``(lo, hi, step)`` tuples, lists of choices, ``fixed(v)``).

    Returns:
        The ``ipywidgets.interactive`` box: ``.children`` are the controls in ``fn``'s argument
        order (then the button, if any, then the output), ``.result`` the last return value,
        ``.update()`` runs ``fn`` with the current values.

    Raises:
        TypeError: ``fn`` is not callable.
        ValueError: a control names no argument of ``fn`` (``interact`` would ignore it), or a
            label names no control.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    labels = dict(labels or {})
    unlabelled = sorted(set(labels) - set(controls))
    if unlabelled:
        raise ValueError(f"labels {unlabelled} name no control; controls: {sorted(controls)}")
    controls = {name: _readable(c) for name, c in controls.items()}
    params = inspect.signature(fn).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = [name for name in controls if name not in params]
        if unknown:
            raise ValueError(f"controls {unknown} are not arguments of "
                             f"{getattr(fn, '__name__', 'fn')}{inspect.signature(fn)}")
    holder = {}

    @functools.wraps(fn)
    def call(**kwargs):
        button = holder.get("button")
        if button is not None:
            button.description, button.icon = "Running…", "hourglass-half"
        try:
            result = fn(**kwargs)
            _show_figure(result)
            return result
        finally:
            if button is not None:
                button.description, button.icon = "Run", "play"

    # Outside IPython there is no display to clear (clearing would print terminal escapes).
    ui = widgets.interactive(call, {"manual": run_button, "manual_name": "Run"},
                             clear_output=get_ipython() is not None, **controls)
    for w in ui.kwargs_widgets:
        if isinstance(w, _SLIDERS):
            w.continuous_update = continuous_update
        if w._kwarg in labels:
            w.description = labels[w._kwarg]
        if hasattr(getattr(w, "style", None), "description_width"):
            w.style.description_width = "initial"
    if run_button:
        ui.manual_button.icon = "play"
        ui.manual_button.button_style = "primary"
        holder["button"] = ui.manual_button
    return ui


def choices(values, value=None, description: str = "") -> widgets.SelectionSlider:
    """A slider over a fixed list of values (staleness levels, densities, worker counts …).

    Args:
        values: the options, in slider order (numbers are shown as they print).
        value: the initial option (default: the first).
        description: the label (``panel`` fills in the argument name when empty).

    Raises:
        ValueError: ``values`` is empty or ``value`` is not among them.
    """
    values = list(values)
    if not values:
        raise ValueError("values must list at least one option")
    if value is None:
        value = values[0]
    elif value not in values:
        raise ValueError(f"value must be one of {values}, got {value!r}")
    return widgets.SelectionSlider(options=[(str(v), v) for v in values], value=value,
                                   description=description, continuous_update=False)


def _select(results, values: dict):
    """The entry of ``results`` for the control ``values`` (see :func:`browse`)."""
    names = list(values)
    if isinstance(results, pd.DataFrame):
        mask = functools.reduce(lambda m, n: m & (results[n] == values[n]), names,
                                pd.Series(True, index=results.index))
        chosen = results[mask]
        if chosen.empty:
            raise ValueError(f"no rows of the results match {values}")
        return chosen
    key = values[names[0]] if len(names) == 1 else tuple(values[n] for n in names)
    if key not in results:
        raise ValueError(f"no result for {values}; computed: {sorted(results, key=repr)}")
    return results[key]


def browse(plot, results, *, labels: Mapping | None = None, **controls) -> widgets.interactive:
    """Sliders that pick among precomputed results; moving one never trains.

    ``results`` is either a mapping keyed by the control values — a scalar key for one control, a
    tuple in the controls' order for several — or a tidy ``pandas.DataFrame`` with one column per
    control (the rows equal to every slider value are selected). ``plot(result)`` draws the
    chosen entry; if ``plot`` also takes arguments named like the controls, they are passed too
    (for titles).

    Args:
        plot: the plain plotting function, called statically in the notebook first.
        results: mapping or DataFrame of finished runs (e.g. loaded from :mod:`stalenb.cache`).
        labels: ``{control: label}`` shown instead of the control names (see :func:`panel`).
        **controls: lists of values (turned into :func:`choices` sliders) or ipywidgets.

    Raises:
        ValueError: no controls, or a DataFrame without a column named like a control.
    """
    if not controls:
        raise ValueError("browse needs at least one control, e.g. tau=[0, 4, 8]")
    if isinstance(results, pd.DataFrame):
        missing = [n for n in controls if n not in results.columns]
        if missing:
            raise ValueError(f"controls {missing} are not columns of results "
                             f"({list(results.columns)})")
    elif not isinstance(results, Mapping):
        raise ValueError(f"results must be a mapping or a DataFrame, got {type(results).__name__}")
    params = inspect.signature(plot).parameters
    takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
    extra = [n for n in controls if takes_all or n in params]

    def show(**values):
        return plot(_select(results, values), **{n: values[n] for n in extra})

    widgets_ = {n: choices(v) if isinstance(v, (list, tuple, range)) else v
                for n, v in controls.items()}
    return panel(show, labels=labels, **widgets_)


def controls(ui: widgets.interactive) -> dict:
    """The panel's controls by argument name: ``controls(ui)["tau"].value = 8``."""
    return {w._kwarg: w for w in ui.kwargs_widgets}


def progress(iterable=None, total: int | None = None, desc: str | None = None, **kwargs):
    """A progress bar for long work (``tqdm.auto``; off with ``TQDM_DISABLE=1``).

    Inside a panel it shows as a widget bar in the panel's output and disappears when done.
    """
    kwargs.setdefault("leave", False)
    return tqdm(iterable, total=total, desc=desc, **kwargs)
