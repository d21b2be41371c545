"""Jupyter server configuration of the project's environment: notebooks stay clean under use.

``make venv`` copies this file to ``.venv/etc/jupyter/jupyter_server_config.py``, so every
``jupyter lab`` / ``jupyter notebook`` started from the project's environment loads it. It adds a
*pre-save hook* (``ContentsManager.pre_save_hook``): when JupyterLab saves — by hand or by autosave —
one of the project's paired notebooks (``<checkout>/notebooks/NN_name.ipynb`` beside its jupytext
source ``NN_name.py``, in a checkout whose ``pyproject.toml`` names the ``stalenb`` project), the
``.ipynb`` is written as committed: no outputs, no execution counts, no widget state, the cell
metadata nbstripout removes dropped, and the notebook-level ``kernelspec`` / ``language_info`` kept
as the file on disk has them (JupyterLab would write the running kernel's display name and version).
So running a notebook and saving it leaves ``git status`` clean; the ``.py`` pair is the source,
the executed copies with outputs are ``make reproduce``'s (``build/notebooks``). The open notebook
keeps showing its outputs until it is closed. Any other notebook is saved untouched.

The kernel's display name that jupytext writes into the ``.py`` header comes from the kernel spec:
``make venv`` installs the ``python3`` kernel as "Python 3", the name the notebooks carry.
"""

import json
import os
import warnings

#: Cell metadata JupyterLab or extensions write and the committed notebooks never hold (nbstripout's list).
CELL_KEYS = ("collapsed", "scrolled", "ExecuteTime", "execution", "heading_collapsed", "hidden")
#: Notebook metadata kept as the file on disk has it (the running kernel would change them).
KEPT = ("kernelspec", "language_info")


def _project_pair(os_path: str) -> bool:
    """True for ``<checkout>/notebooks/X.ipynb`` with ``X.py`` beside it in a stalenb checkout."""
    folder, name = os.path.split(os.path.abspath(os_path))
    stem, ext = os.path.splitext(name)
    if ext != ".ipynb" or os.path.basename(folder) != "notebooks":
        return False
    if not os.path.isfile(os.path.join(folder, stem + ".py")):
        return False
    try:
        with open(os.path.join(os.path.dirname(folder), "pyproject.toml"), encoding="utf-8") as fh:
            return any(line.replace(" ", "") == 'name="stalenb"' for line in fh.read().splitlines())
    except OSError:
        return False


def strip_for_git(model, path, contents_manager, **kwargs):
    """The pre-save hook: strip a project notebook's model in place (see the module docstring)."""
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    get_os_path = getattr(contents_manager, "_get_os_path", None)
    if get_os_path is None:
        return
    os_path = get_os_path(path)
    if not _project_pair(os_path):
        return
    nb = model["content"]
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        meta = cell.get("metadata", {})
        for key in CELL_KEYS:
            meta.pop(key, None)
    meta = nb.setdefault("metadata", {})
    meta.pop("widgets", None)
    meta.pop("signature", None)
    try:
        with open(os_path, encoding="utf-8") as fh:
            on_disk = json.load(fh).get("metadata", {})
    except (OSError, ValueError):
        on_disk = {}
    for key in KEPT:
        if key in on_disk:
            meta[key] = on_disk[key]


c = get_config()  # noqa: F821 - defined by Jupyter when it loads this file
c.ContentsManager.pre_save_hook = strip_for_git
# the server applies its config twice, and jupyter_server warns when a hook replaces itself
warnings.filterwarnings("ignore", message=r"Overriding existing pre_save_hook \(strip_for_git\)")
