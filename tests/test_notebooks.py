"""Notebook hygiene: the conventions nbval and papermill rely on, checked on the committed files.

The traps these guard against are listed in ``docs/design.md`` (appendix): outputs committed with the
sources ("Unrun reference cell has outputs"), a stripping config that drops the ``parameters``
tag, derived values in the parameters cell (papermill does not recompute them), a kernelspec
papermill cannot find, figures without their notebook's prefix, notebooks that check nothing, and
a CI run that silently runs the full profile instead of the quick one.
"""

from __future__ import annotations

import ast
import io
import os
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import nbformat
import papermill
import pytest

import stalenb as sn
from stalenb import paths

NOTEBOOKS = sorted(paths.notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
NAME = re.compile(r"^(\d\d)_[a-z0-9_]+\.ipynb$")
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
MAX_CELL_LINES = 25  # "a notebook cell rarely exceeds ~15 lines" (style.md); a hard ceiling here
INTERACTIVE = range(1, 8)  # notebooks 01–07 offer their sliders through stalenb.widgets


def _ids(paths_):
    return [p.stem for p in paths_]


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _code(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def _parse(source: str) -> ast.Module:
    """A code cell as Python (IPython magics and shell lines blanked out)."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    return ast.parse("\n".join(lines))


def _parameters(nb):
    return [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]


def _dotted(node) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _calls(tree, name: str):
    """Every call whose function is ``name`` or ends in ``.name``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = _dotted(node.func)
            if f is not None and (f == name or f.endswith("." + name)):
                yield node


def test_notebooks_sort_into_reading_order():
    assert NOTEBOOKS, f"no notebooks in {paths.notebooks_dir()}"
    names = [p.name for p in NOTEBOOKS]
    bad = [n for n in names if not NAME.match(n)]
    assert not bad, f"notebook names must look like 01_lower_case_words.ipynb: {bad}"
    numbers = [int(NAME.match(n).group(1)) for n in names]
    assert numbers == list(range(len(numbers))), f"numbers must run 00, 01, … without gaps: {names}"
    assert "01_generalized_curvature.ipynb" in names  # the browser test's notebook


def test_committed_notebooks_are_stripped_nbstripout_verify():
    """``nbstripout --verify`` (with the repository's config) would change nothing."""
    files = [str(p.relative_to(paths.repo_root())) for p in NOTEBOOKS]
    done = subprocess.run([sys.executable, "-m", "nbstripout", "--verify", *files],
                          cwd=paths.repo_root(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (
        "notebooks with outputs or execution counts; run `make strip`:\n"
        f"{done.stdout}{done.stderr}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_stripping_keeps_the_parameters_tag(path):
    """The stripping config in use (``nbstripout --textconv``) keeps cell tags."""
    done = subprocess.run([sys.executable, "-m", "nbstripout", "--textconv",
                           str(path.relative_to(paths.repo_root()))],
                          cwd=paths.repo_root(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    stripped = nbformat.reads(done.stdout, as_version=4)
    assert len(_parameters(stripped)) == 1, "stripping dropped the 'parameters' tag"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_no_outputs_or_execution_counts(path):
    nb = _read(path)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"cells {dirty} carry outputs or execution counts; run `make strip`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_kernelspec_is_python3(path):
    assert _read(path).metadata.get("kernelspec") == KERNELSPEC


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_starts_with_a_title_then_the_parameters_cell(path):
    nb = _read(path)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("# "), \
        "cell 1 must be a markdown title ('# 0N · …') saying which claim is reproduced"
    params = _parameters(nb)
    assert len(params) == 1, f"exactly one cell tagged 'parameters', found {len(params)}"
    assert params[0].cell_type == "code" and params[0] is _code(nb)[0], \
        "the parameters cell must be the first code cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_parameters_are_literals_with_one_comment_each(path):
    source = _parameters(_read(path))[0].source
    tree = _parse(source)
    comments = {tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT}
    names = []
    for stmt in tree.body:
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
            and isinstance(stmt.targets[0], ast.Name), \
            f"line {stmt.lineno}: only `name = literal` assignments belong in the parameters cell"
        name = stmt.targets[0].id
        try:
            ast.literal_eval(stmt.value)
        except ValueError:
            pytest.fail(f"{name} (line {stmt.lineno}) is not a literal; papermill does not "
                        "recompute derived values: move it to the next cell")
        lines = set(range(stmt.lineno - 1, stmt.end_lineno + 1))
        assert lines & comments, f"{name} (line {stmt.lineno}) needs a comment saying what it is"
        names.append(name)
    assert len(names) == len(set(names)), f"a parameter is assigned twice: {names}"
    unseen = sorted(set(names) - set(papermill.inspect_notebook(str(path))))
    assert not unseen, (f"papermill cannot see the parameters {unseen} (papermill -p would warn "
                        "'unknown parameter'): a parameter line must hold exactly one '=', "
                        "none in its comment")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_figures_carry_the_notebook_prefix(path):
    prefix = path.name[:3]  # "01_"
    found = []
    for cell in _code(_read(path)):
        for call in _calls(_parse(cell.source), "save_figure"):
            args = list(call.args[1:2]) + [k.value for k in call.keywords if k.arg == "name"]
            assert args, f"save_figure without a name: {ast.unparse(call)}"
            arg = args[0]
            if isinstance(arg, ast.JoinedStr):  # f"01_x_{tau}": check the literal head
                arg = arg.values[0] if arg.values else arg
            assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), \
                f"use a literal figure name starting with {prefix!r}: {ast.unparse(call)}"
            assert arg.value.startswith(prefix), \
                f"figure {arg.value!r} must start with the notebook prefix {prefix!r}"
            found.append(arg.value)
    if int(prefix[:2]) >= 1:
        assert found, "every notebook after 00 saves its figures with sn.plotting.save_figure"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_ends_with_assert_cells(path):
    last = _code(_read(path))[-1]
    asserts = [n for n in ast.walk(_parse(last.source)) if isinstance(n, ast.Assert)]
    assert asserts, "the last code cell must assert the claim the notebook reproduces"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_cells_are_short_and_paths_come_from_the_package(path):
    for i, cell in enumerate(_code(_read(path))[1:], start=2):
        n = len(cell.source.splitlines())
        assert n <= MAX_CELL_LINES, f"code cell {i} has {n} lines; move the mechanism to stalenb/"
        assert not re.search(r"""["'](\.\./|\./)|os\.chdir""", cell.source), \
            f"code cell {i} uses a path relative to the working directory; use sn.paths"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if int(p.name[:2]) in INTERACTIVE],
                         ids=_ids([p for p in NOTEBOOKS if int(p.name[:2]) in INTERACTIVE]))
def test_sliders_come_from_stalenb_widgets_after_a_static_call(path):
    cells = [_parse(c.source) for c in _code(_read(path))]
    panels = [(i, call) for i, tree in enumerate(cells)
              for name in ("panel", "browse") for call in _calls(tree, name)]
    assert panels, "offer the key quantities on sliders with sn.widgets.panel / browse"
    for tree in cells:
        raw = [ast.unparse(c) for name in ("interact", "interactive", "interact_manual")
               for c in _calls(tree, name)]
        assert not raw, f"use sn.widgets.panel instead of ipywidgets directly: {raw}"
    for i, call in panels:
        fn = _dotted(call.args[0]) if call.args else None
        assert fn is not None, f"panel's first argument must name a plain function: {ast.unparse(call)}"
        earlier = [c for tree in cells[:i] for c in _calls(tree, fn)]
        assert earlier, (f"call {fn}(...) statically in an earlier cell before offering it on "
                         "sliders (ipywidgets swallows errors raised inside a panel)")


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def test_quick_mode_is_active_under_make_and_ci(monkeypatch):
    """nbval runs the notebooks in quick mode in CI and ``make test``: their kernels inherit this
    environment, as the child Python below does. Outside both only the switch itself is checked."""
    if _truthy("CI") or "MAKELEVEL" in os.environ:
        assert _truthy("STALENB_QUICK"), "CI / make test must set STALENB_QUICK=1"
        assert _truthy("TQDM_DISABLE"), "CI / make test must set TQDM_DISABLE=1 (no bar spam)"
        assert sn.paths.quick() and sn.paths.pick("full", "quick") == "quick"
        child = subprocess.run([sys.executable, "-c", "import stalenb; print(stalenb.paths.quick())"],
                               capture_output=True, text=True, timeout=120)
        assert child.stdout.strip() == "True", child.stderr
    monkeypatch.setenv("STALENB_QUICK", "1")
    assert sn.paths.quick() and sn.paths.pick(100, 3) == 3
    monkeypatch.setenv("STALENB_QUICK", "0")
    assert not sn.paths.quick() and sn.paths.pick(100, 3) == 100


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_shrinks_in_quick_mode(path):
    """Every notebook that does real work reads the quick switch (``sn.paths.pick``/``quick``)."""
    source = "\n".join(c.source for c in _code(_read(path)))
    assert re.search(r"\b(pick|quick)\(", source), \
        "use sn.paths.pick(full, quick) or sn.paths.quick() so that nbval runs the quick profile"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_and_its_jupytext_source_agree(path):
    """Each notebook is a jupytext pair: ``NN_name.py`` (py:percent, the source to edit) ↔
    ``NN_name.ipynb``. Same cells, same sources, same tags (``make notebooks`` syncs them)."""
    import jupytext

    source = path.with_suffix(".py")
    assert source.is_file(), f"{path.name} has no jupytext source {source.name}; run `make notebooks`"
    text = jupytext.read(source)
    nb = _read(path)
    want = [(c.cell_type, c.source, sorted(c.get("metadata", {}).get("tags", []))) for c in text.cells]
    have = [(c.cell_type, c.source, sorted(c.get("metadata", {}).get("tags", []))) for c in nb.cells]
    assert have == want, f"{path.name} and {source.name} disagree; run `make notebooks`"
    assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent"


BOOTSTRAPPING = ("lineplot", "relplot", "barplot", "pointplot", "regplot", "lmplot", "catplot")


def _seaborn_calls(tree):
    return [c for name in BOOTSTRAPPING for c in _calls(tree, name) if (_dotted(c.func) or "").startswith("sns.")]


@pytest.mark.parametrize("path", NOTEBOOKS + sorted(Path(sn.__file__).parent.glob("*.py")),
                         ids=_ids(NOTEBOOKS) + [p.name for p in sorted(Path(sn.__file__).parent.glob("*.py"))])
def test_seaborn_confidence_bands_are_seeded(path):
    # seaborn bootstraps its default 95 % bands with an unseeded generator: the same data then draw
    # a different figure on every run ("same seed, same numbers" covers figures too)
    sources = [c.source for c in _code(_read(path))] if path.suffix == ".ipynb" else [path.read_text()]
    for source in sources:
        for call in _seaborn_calls(_parse(source)):
            kw = {k.arg: k.value for k in call.keywords}
            no_band = isinstance(kw.get("errorbar"), ast.Constant) and kw["errorbar"].value is None
            assert "seed" in kw or no_band, f"{path.name}: sns.{_dotted(call.func)} line {call.lineno} has no seed="
