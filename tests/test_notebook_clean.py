"""Notebooks stay clean under use (issue 25, item 3), without a browser: the pre-save hook of
``tools/jupyter_server_config.py`` (installed into the environment by ``make venv``), driven by
jupytext's own contents manager as JupyterLab drives it, saves an executed notebook exactly as
committed (``git status`` of a scratch repository stays empty); notebooks that are not the
project's paired notebooks keep their outputs. ``tests/test_browser.py`` checks the same through a
real JupyterLab save."""

from __future__ import annotations

import json
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stalenb import paths

HOOK_FILE = paths.repo_root() / "tools" / "jupyter_server_config.py"
NOTEBOOK = "01_generalized_curvature"


def _hook():
    from traitlets.config import Config

    config = Config()
    found = runpy.run_path(str(HOOK_FILE), init_globals={"get_config": lambda: config})
    assert config.ContentsManager.pre_save_hook is found["strip_for_git"]
    return found["strip_for_git"]


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.org", *args], cwd=root,
                          capture_output=True, text=True, check=True)
    return done.stdout


def scratch_checkout(root: Path, notebook: Path) -> Path:
    """A git repository that looks like a stalenb checkout: pyproject.toml, .gitignore and
    ``notebooks/`` with ``notebook`` and its ``.py`` pair (the working tree's versions, synced as
    ``make notebooks`` syncs them, so that a pair someone is editing does not count as a change the
    save made), committed. Returns the .ipynb."""
    from jupytext.cli import jupytext

    (root / "notebooks").mkdir(parents=True)
    for name in ("pyproject.toml", ".gitignore"):
        shutil.copy(paths.repo_root() / name, root / name)
    for source in (notebook, notebook.with_suffix(".py")):  # .py last: jupytext reads the newer text
        if source.is_file():
            shutil.copy2(source, root / "notebooks" / source.name)
    if notebook.with_suffix(".py").is_file():
        jupytext(["--sync", "--quiet", str(root / "notebooks" / notebook.with_suffix(".py").name)])
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "scratch")
    return root / "notebooks" / notebook.name


def _executed(model: dict) -> dict:
    """``model`` as JupyterLab sends it after Run All: outputs, counts, the running kernel's metadata."""
    nb = model["content"]
    for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        cell["execution_count"] = i + 1
        cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "ran\n"}]
        cell["metadata"]["scrolled"] = True
    nb["metadata"]["language_info"] = {"name": "python", "version": "3.11.7", "mimetype": "text/x-python",
                                       "codemirror_mode": {"name": "ipython", "version": 3}}
    nb["metadata"]["kernelspec"] = {**nb["metadata"]["kernelspec"], "display_name": "Python 3 (ipykernel)"}
    nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return model


def _manager(root: Path, hook):
    from jupytext import TextFileContentsManager

    return TextFileContentsManager(root_dir=str(root), **({"pre_save_hook": hook} if hook else {}))


def test_saving_an_executed_project_notebook_leaves_git_status_clean(tmp_path):
    ipynb = scratch_checkout(tmp_path, paths.notebooks_dir() / f"{NOTEBOOK}.ipynb")
    committed = ipynb.read_bytes()
    cm = _manager(tmp_path, _hook())
    path = f"notebooks/{ipynb.name}"
    model = _executed(cm.get(path))
    model["content"]["metadata"]["kernelspec"]["display_name"] = "Python 3"  # the kernel `make venv` names
    cm.save(model, path)
    assert git(tmp_path, "status", "--porcelain") == ""
    assert ipynb.read_bytes() == committed
    # without the hook the same save would have dirtied the notebook (the check can fail)
    _manager(tmp_path, None).save(_executed(cm.get(path)), path)
    assert f" M {path}\n" in git(tmp_path, "status", "--porcelain")


def test_the_kernel_as_running_keeps_the_notebooks_kernelspec(tmp_path):
    ipynb = scratch_checkout(tmp_path, paths.notebooks_dir() / f"{NOTEBOOK}.ipynb")
    cm = _manager(tmp_path, _hook())
    path = f"notebooks/{ipynb.name}"
    cm.save(_executed(cm.get(path)), path)  # display name "Python 3 (ipykernel)" in the model
    saved = json.loads(ipynb.read_text())
    assert saved["metadata"]["kernelspec"]["display_name"] == "Python 3"  # as on disk, not as the kernel says
    assert git(tmp_path, "status", "--porcelain", "--", path) == ""


@pytest.mark.parametrize("where", ["unpaired", "outside a checkout"])
def test_other_notebooks_keep_their_outputs(where, tmp_path):
    ipynb = scratch_checkout(tmp_path, paths.notebooks_dir() / f"{NOTEBOOK}.ipynb")
    if where == "unpaired":
        path = "notebooks/mine.ipynb"
        shutil.copy(ipynb, tmp_path / path)
    else:
        (tmp_path / "elsewhere").mkdir()
        path = f"elsewhere/{ipynb.name}"
        shutil.copy(ipynb, tmp_path / path)
        shutil.copy(ipynb.with_suffix(".py"), tmp_path / path.replace(".ipynb", ".py"))
    cm = _manager(tmp_path, _hook())
    cm.save(_executed(cm.get(path)), path)
    saved = json.loads((tmp_path / path).read_text())
    assert any(c.get("outputs") for c in saved["cells"]), "a notebook of one's own keeps its outputs"


def test_this_environment_has_the_hook_and_the_kernel_name():
    """``make venv`` installs both; a JupyterLab of this environment then saves clean notebooks."""
    from jupyter_client.kernelspec import KernelSpecManager

    installed = Path(sys.prefix) / "etc" / "jupyter" / "jupyter_server_config.py"
    assert installed.is_file() and installed.read_text() == HOOK_FILE.read_text(), \
        f"{installed} is not tools/jupyter_server_config.py: run `make venv`"
    names = {json.loads(p.read_text())["metadata"]["kernelspec"]["display_name"]
             for p in paths.notebooks_dir().glob("*.ipynb")}
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert names == {spec.display_name}, f"kernel python3 is {spec.display_name!r}, notebooks say {names}: run `make venv`"
