"""environment.yml (conda-forge) and pyproject.toml list the same packages; torch pair matches."""

import re
import tomllib
from importlib.metadata import version

import yaml

from stalenb import paths

CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name


def _split(spec: str):
    m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", spec.strip())
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def _pyproject():
    data = tomllib.loads((paths.repo_root() / "pyproject.toml").read_text())
    specs = list(data["project"]["dependencies"])
    for extra in data["project"].get("optional-dependencies", {}).values():
        specs += extra
    return dict(_split(s) for s in specs)


def _environment():
    env = yaml.safe_load((paths.repo_root() / "environment.yml").read_text())
    assert "conda-forge" in env["channels"] and "defaults" not in env["channels"]
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            continue
        name, pin = _split(dep)
        if name in {"python", "pip"}:
            continue
        out[CONDA_NAMES.get(name, name)] = pin
    return out


def test_environment_and_pyproject_agree():
    py, env = _pyproject(), _environment()
    assert set(py) == set(env), f"only in pyproject: {set(py) - set(env)}; only in env: {set(env) - set(py)}"
    for name in py:
        assert py[name] == env[name], f"{name}: pyproject {py[name]!r} vs environment.yml {env[name]!r}"


def _minor(spec_or_version: str) -> int:
    return int(re.search(r"(\d+)\.(\d+)", spec_or_version).group(2))


def test_torch_pair_pinned_and_installed_match():
    py = _pyproject()
    assert py["torch"].startswith("==") and py["torchvision"].startswith("==")
    assert _minor(py["torchvision"]) == _minor(py["torch"]) + 15
    assert _minor(version("torchvision")) == _minor(version("torch")) + 15
    import torchvision.ops  # compiled ops fail to load when the pair does not match

    assert torchvision.ops.nms is not None
