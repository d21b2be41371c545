"""Dependency layers: pyproject.toml, environment.yml (conda / Binder) and requirements-lock.txt agree."""

import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import version

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from stalenb import paths

CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name
RUNTIME_EXTRAS = ("notebooks",)  # what environment.yml adds to the library's own dependencies


def _split(spec: str):
    m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", spec.strip())
    return canonicalize_name(m.group(1)), m.group(2).replace(" ", "")


def _project():
    return tomllib.loads((paths.repo_root() / "pyproject.toml").read_text())["project"]


def _pyproject(extras=RUNTIME_EXTRAS):
    project = _project()
    specs = list(project["dependencies"])
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    return dict(_split(s) for s in specs)


def _environment():
    env = yaml.safe_load((paths.repo_root() / "environment.yml").read_text())
    assert "conda-forge" in env["channels"] and "defaults" not in env["channels"]
    out, python, pip = {}, None, None
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip = dep["pip"]
            continue
        name, pin = _split(dep)
        if name == "python":
            python = pin
        elif name != "pip":
            out[CONDA_NAMES.get(name, name)] = pin
    return out, python, pip


def test_environment_is_the_runtime_and_notebook_layers_of_pyproject():
    py, (env, python, pip) = _pyproject(), _environment()
    assert set(py) == set(env), f"only in pyproject: {set(py) - set(env)}; only in env: {set(env) - set(py)}"
    for name in py:
        assert py[name] == env[name], f"{name}: pyproject {py[name]!r} vs environment.yml {env[name]!r}"
    assert python == "=3.11"  # one version, the form repo2docker reads
    assert pip == ["-e ."]  # the project itself from this repository


def test_library_layer_is_small_and_extras_hold_the_rest():
    core = set(_pyproject(extras=()))
    assert core == {"torch", "torchvision", "numpy", "scipy", "pandas", "matplotlib", "tqdm", "loky"}
    extras = _project()["optional-dependencies"]
    assert {"seaborn", "ipywidgets", "jupyterlab", "papermill"} <= set(_pyproject(("notebooks",)))
    assert {"dask", "distributed"} <= {_split(s)[0] for s in extras["cluster"]} & {_split(s)[0] for s in extras["test"]}
    assert "pyarrow" not in _pyproject(tuple(extras))


def test_lock_file_pins_every_direct_dependency_within_its_range():
    lines = (paths.repo_root() / "requirements-lock.txt").read_text().splitlines()
    pins = dict(_split(line) for line in lines if line.strip() and not line.startswith("#"))
    assert all(re.fullmatch(r"==[0-9][^,;]*", pin) for pin in pins.values())  # exact versions only
    for spec in _project()["dependencies"] + sum(_project()["optional-dependencies"].values(), []):
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"{name} is not in requirements-lock.txt (run make lock)"
        assert req.specifier.contains(pins[name][2:], prereleases=True), f"{name}{pins[name]} outside {req.specifier}"


def test_lock_file_records_this_environment():
    # the committed results come from the versions installed here: the lock must say the same
    pins = dict(_split(line) for line in (paths.repo_root() / "requirements-lock.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#"))
    for name in ("torch", "numpy", "scipy", "pandas", "matplotlib"):
        assert pins[name] == "==" + version(name), name


def test_license_is_mit_as_declared():
    text = (paths.repo_root() / "LICENSE").read_text()
    assert _project()["license"] == "MIT" and text.startswith("MIT License")
    assert "the stalenb authors" in text


def _minor(spec_or_version: str) -> int:
    return int(re.search(r"(\d+)\.(\d+)", spec_or_version).group(2))


def test_torch_pair_pinned_and_installed_match():
    py = _pyproject()
    assert py["torch"].startswith("==") and py["torchvision"].startswith("==")
    assert _minor(py["torchvision"]) == _minor(py["torch"]) + 15
    assert _minor(version("torchvision")) == _minor(version("torch")) + 15
    import torchvision.ops  # compiled ops fail to load when the pair does not match

    assert torchvision.ops.nms is not None


def test_import_stalenb_loads_no_plotting_widget_or_stats_library():
    code = ("import sys, stalenb, stalenb.distributed; "
            "print(sorted(m for m in ('seaborn', 'ipywidgets', 'IPython', 'scipy.stats', 'matplotlib.pyplot') "
            "if m in sys.modules))")
    env = dict(os.environ, PYTHONPATH=str(paths.repo_root()))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]", out.stdout
    code = "import sys, stalenb; stalenb.plotting.set_style(); print('seaborn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "True"  # loaded on first use
