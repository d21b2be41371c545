"""Slider panels around plain functions (ipywidgets).

The rule (``reference/style.md``, habit 9): a notebook first calls the plain plotting or
experiment function statically in its own cell, then offers the same function behind sliders with
:func:`panel`. Anything that trains uses ``run_button=True`` so it runs on a button press, never
once per slider tick.
"""

from __future__ import annotations

import ipywidgets as widgets


def panel(fn, *, run_button: bool = False, **controls) -> widgets.interactive:
    """``ipywidgets.interactive(fn, **controls)``; with ``run_button`` it only runs on a click.

    Controls are ipywidgets (``FloatSlider`` …) or the abbreviations ``interact`` accepts
    (``(lo, hi, step)`` tuples, lists of choices). The returned widget shows the function's output
    and exposes ``.children`` (the controls) and ``.result`` (the last return value).
    """
    ui = widgets.interactive(fn, {"manual": run_button, "manual_name": "Run"}, **controls)
    return ui
