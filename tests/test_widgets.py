"""Slider panels without a browser: set values the way ipywidgets' own tests do, check the effect."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import stalenb as sn  # noqa: E402
from stalenb import widgets as sw  # noqa: E402
from stalenb.sim.gradients import Quadratic  # noqa: E402


def recorder():
    """A plain function that logs its calls and returns a hand-checkable value."""
    calls = []

    def f(a=1.0, n=2):
        calls.append((a, n))
        return a * n

    return f, calls


def test_panel_runs_at_creation_and_on_every_slider_change():
    f, calls = recorder()
    ui = sw.panel(f, a=(0.0, 4.0, 0.5), n=(1, 5))
    assert isinstance(ui, widgets.interactive)
    a, n = ui.children[0], ui.children[1]
    assert isinstance(a, widgets.FloatSlider) and isinstance(n, widgets.IntSlider)
    assert (a.description, n.description) == ("a", "n")
    assert (a.min, a.max, a.step, n.min, n.max) == (0.0, 4.0, 0.5, 1, 5)
    assert calls == [(1.0, 2)] and ui.result == 2.0  # starts at the plain function's defaults
    a.value = 3.5
    assert calls[-1] == (3.5, 2) and ui.result == 7.0
    n.value = 5
    assert calls[-1] == (3.5, 5) and ui.result == 17.5
    assert len(calls) == 3
    assert isinstance(ui.children[-1], widgets.Output)


def test_panel_uses_defaults_of_the_plain_function_and_fixed_values():
    f, calls = recorder()
    ui = sw.panel(f, a=widgets.FloatSlider(value=0.25, min=0, max=1), n=widgets.fixed(4))
    assert ui.result == 1.0 and calls == [(0.25, 4)]
    assert len(ui.kwargs_widgets) == 2 and len(ui.children) == 2  # slider + output, fixed hidden


def test_run_button_runs_only_on_click():
    f, calls = recorder()
    ui = sw.panel(f, run_button=True, a=(0.0, 4.0, 0.5), n=(1, 5))
    button = ui.children[-2]
    assert isinstance(button, widgets.Button) and button.description == "Run"
    assert calls == [] and ui.result is None  # nothing trains at creation
    ui.children[0].value = 1.5
    ui.children[1].value = 4
    assert calls == []  # nor on a slider change
    button.click()
    assert calls == [(1.5, 4)] and ui.result == 6.0
    assert button.description == "Run" and not button.disabled


def test_run_button_shows_that_work_is_running():
    seen = []
    ui = None

    def work(steps=3):
        seen.append((ui.manual_button.description, ui.manual_button.disabled))
        return steps

    ui = sw.panel(work, run_button=True, steps=(1, 9))
    ui.manual_button.click()
    assert seen == [("Running…", True)]
    assert (ui.manual_button.description, ui.manual_button.disabled) == ("Run", False)


def test_run_button_trains_a_real_run_on_click():
    runs = []

    def train(lr=0.5, steps=4):
        run = sn.run(sn.Config(protocol="async", staleness=sn.Constant(1), lr=lr, steps=steps),
                     Quadratic(a=[1.0], x0=[1.0]), cache=False, progress=False)
        runs.append(run)
        return run.history

    ui = sw.panel(train, run_button=True, lr=(0.1, 0.9, 0.1), steps=(2, 8))
    sw.controls(ui)["steps"].value = 6
    assert runs == []
    ui.manual_button.click()
    assert len(runs) == 1 and runs[0].config.steps == 6
    assert int(ui.result["step"].max()) == 6


def test_sliders_update_on_release_unless_asked():
    f, _ = recorder()
    ui = sw.panel(f, a=(0.0, 4.0), n=(1, 5))
    assert [w.continuous_update for w in ui.kwargs_widgets] == [False, False]
    ui = sw.panel(f, continuous_update=True, a=(0.0, 4.0), n=(1, 5))
    assert [w.continuous_update for w in ui.kwargs_widgets] == [True, True]


def test_returned_figure_follows_the_slider_and_is_closed():
    def plot(slope=1.0):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, slope])
        return fig

    plt.close("all")
    ui = sw.panel(plot, slope=(0.0, 2.0, 0.5))
    assert ui.result.axes[0].lines[0].get_ydata()[1] == 1.0
    ui.children[0].value = 2.0
    assert ui.result.axes[0].lines[0].get_ydata()[1] == 2.0
    assert plt.get_fignums() == []  # one figure per call, closed after display


def test_callback_errors_do_not_escape_the_panel(caplog):
    def bad(x=1):
        raise RuntimeError("boom")

    ui = sw.panel(bad, x=(0, 3))
    assert ui.result is None
    assert "boom" in caplog.text  # ipywidgets logs it outside IPython (shows it inside)


def test_panel_rejects_non_callables_and_unknown_controls():
    with pytest.raises(TypeError, match="fn must be callable"):
        sw.panel(3, a=(0, 1))
    f, calls = recorder()
    with pytest.raises(ValueError, match=r"controls \['b'\] are not arguments of f"):
        sw.panel(f, b=(0, 1))
    assert calls == []
    ui = sw.panel(lambda **kw: sorted(kw), b=(0, 1))  # a function taking **kwargs takes any name
    assert ui.result == ["b"]


def test_labels_replace_argument_names_and_tuple_options_read_as_names():
    f, calls = recorder()
    ui = sw.panel(f, labels={"a": "step α (× 1/L)"}, a=(0.0, 4.0, 0.5), n=[1, 2])
    c = sw.controls(ui)
    assert c["a"].description == "step α (× 1/L)" and c["n"].description == "n"   # unlabelled keeps its name
    assert c["a"].style.description_width == c["n"].style.description_width == "initial"
    g = lambda shown=("a", "b"): shown  # noqa: E731
    ui = sw.panel(g, shown=[("vanilla", "top-k 1% +EF"), ("vanilla",)])
    drop = sw.controls(ui)["shown"]
    assert list(drop._options_labels) == ["vanilla, top-k 1% +EF", "vanilla"]   # labels, not tuple reprs
    drop.value = ("vanilla",)
    assert ui.result == ("vanilla",)                                          # the value is still the tuple
    with pytest.raises(ValueError, match=r"labels \['b'\] name no control"):
        sw.panel(f, labels={"b": "x"}, a=(0, 1))


def test_choices_is_a_selection_slider():
    s = sw.choices([0, 4, 8, 16, 32], value=8)
    assert isinstance(s, widgets.SelectionSlider)
    assert s.value == 8 and [label for label, _ in s.options] == ["0", "4", "8", "16", "32"]
    s.index = 4
    assert s.value == 32
    assert sw.choices([0.1, 0.01]).value == 0.1
    with pytest.raises(ValueError, match="value must be one of"):
        sw.choices([1, 2], value=3)
    with pytest.raises(ValueError, match="values"):
        sw.choices([])


def test_browse_picks_among_precomputed_results_without_recomputing():
    computed = {(tau, rho): f"run tau={tau} rho={rho}" for tau in (0, 4, 8) for rho in (0.01, 0.1)}
    shown = []

    def plot(result):
        shown.append(result)
        return result

    ui = sw.browse(plot, computed, tau=[0, 4, 8], rho=[0.01, 0.1])
    assert all(isinstance(w, widgets.SelectionSlider) for w in ui.kwargs_widgets)
    assert ui.result == "run tau=0 rho=0.01"
    sw.controls(ui)["tau"].value = 8
    assert ui.result == "run tau=8 rho=0.01"
    sw.controls(ui)["rho"].value = 0.1
    assert ui.result == "run tau=8 rho=0.1"
    assert shown == ["run tau=0 rho=0.01", "run tau=8 rho=0.01", "run tau=8 rho=0.1"]


def test_browse_one_control_scalar_keys_and_named_arguments():
    def plot(curve, tau):
        return (tau, curve.sum())

    ui = sw.browse(plot, {0: np.ones(3), 4: np.ones(5)}, tau=[0, 4])
    assert ui.result == (0, 3.0)
    ui.children[0].value = 4
    assert ui.result == (4, 5.0)


def test_browse_selects_rows_of_a_tidy_frame():
    frame = pd.DataFrame({"tau": [0, 0, 8, 8], "seed": [0, 1, 0, 1], "acc": [0.9, 0.8, 0.5, 0.4]})
    ui = sw.browse(lambda rows: rows["acc"].mean(), frame, tau=[0, 8])
    assert ui.result == pytest.approx(0.85)
    ui.children[0].value = 8
    assert ui.result == pytest.approx(0.45)


def test_browse_rejects_bad_inputs():
    with pytest.raises(ValueError, match="at least one control"):
        sw.browse(print, {0: 1})
    with pytest.raises(ValueError, match=r"\['rho'\] are not columns"):
        sw.browse(print, pd.DataFrame({"tau": [0]}), rho=[0.1])
    with pytest.raises(ValueError, match="mapping or a DataFrame"):
        sw.browse(print, [1, 2], tau=[0, 1])
    with pytest.raises(ValueError, match="no result for"):
        sw._select({0: "a"}, {"tau": 4})
    with pytest.raises(ValueError, match="no rows"):
        sw._select(pd.DataFrame({"tau": [0]}), {"tau": 4})


def test_progress_counts_and_can_be_silenced():
    bar = sw.progress(range(5), desc="runs", disable=True)
    assert list(bar) == [0, 1, 2, 3, 4]
    bar = sw.progress(total=3, disable=False, file=open("/dev/null", "w"))
    bar.update(2)
    assert bar.n == 2 and bar.total == 3 and bar.leave is False
    bar.close()


def test_module_docstring_example_runs():
    import doctest

    failed, attempted = doctest.testmod(sw)
    assert attempted > 0 and failed == 0


def test_digit_grid_tiles_each_digit_under_its_label():
    import matplotlib.pyplot as plt
    import numpy as np

    from stalenb import plotting

    imgs = np.random.default_rng(0).integers(0, 255, (7, 28, 28))
    fig = plotting.digit_grid(imgs, list(range(7)), rows=2, cols=4, gap=10)
    ax = fig.axes[0]
    mosaic = ax.images[0].get_array()
    assert mosaic.shape == (2 * 38, 4 * 30)
    r, c = divmod(5, 4)  # digit 5: second row, second column
    np.testing.assert_array_equal(mosaic[r * 38 + 10 : (r + 1) * 38, c * 30 + 1 : c * 30 + 29], imgs[5])
    assert [t.get_text() for t in ax.texts] == [str(i) for i in range(7)]
    assert not mosaic[-38:, -30:].any()  # the eighth tile is empty
    plt.close(fig)
