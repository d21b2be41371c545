"""Print requirements-lock.txt: the installed version of every package in the dependency closure
of stalenb[notebooks,cluster,test], read from pyproject.toml and this environment's metadata
(``make lock``; the file records the versions behind the committed results).

Usage: ``.venv/bin/python tools/lock.py > requirements-lock.txt``
"""

import platform
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

EXTRAS = ("notebooks", "cluster", "test")


def direct() -> list[Requirement]:
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in EXTRAS:
        specs += project["optional-dependencies"][extra]
    return [Requirement(s) for s in specs]


def closure(roots: list[Requirement]) -> dict[str, str]:
    """{canonical name: installed version} of ``roots`` and everything they need here."""
    found, todo = {}, [(r, ()) for r in roots]
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in extras or ("",)):
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency that is not installed
        key = (name, tuple(sorted(req.extras)))
        if key in found:
            continue
        found[key] = dist.version
        for sub in dist.requires or []:
            todo.append((Requirement(sub), tuple(req.extras)))
    return {name: version for (name, _), version in found.items()}


def main() -> None:
    pins = closure(direct())
    print(f"# Exact versions behind the committed results: the closure of stalenb[{','.join(EXTRAS)}]")
    print(f"# on Python {platform.python_version()} ({sys.platform}). Regenerate with `make lock`.")
    print("# Install: python -m pip install -r requirements-lock.txt && python -m pip install --no-deps -e .")
    for name in sorted(pins):
        print(f"{name}=={pins[name]}")


if __name__ == "__main__":
    main()
