"""Run every notebook in order with papermill: the batch pipeline behind ``make reproduce``.

Usage::

    python -m stalenb.repro.reproduce                 # paper profile: full sizes, writes figures/
    python -m stalenb.repro.reproduce --quick         # quick profile (sets STALENB_QUICK=1)
    python -m stalenb.repro.reproduce --only 05 07    # some notebooks (by number prefix or name)
    python -m stalenb.repro.reproduce -p 05:seeds=5   # override one parameter of one notebook
    python -m stalenb.repro.reproduce --list          # notebooks and their parameters

What it does (``docs/design.md`` (appendix), "traps of the toolchain"):

- executes ``notebooks/[0-9][0-9]_*.ipynb`` with ``papermill.execute_notebook`` (kernel
  ``python3``, started by papermill; a per-cell timeout, the notebooks folder as working
  directory), as many at once as there are cores (``--jobs``), started and reported in reading
  order, and writes the executed copies to ``build/notebooks/`` (ignored by git), never over the
  sources; a notebook of :data:`ALONE` (real processes, timed) starts only when every other
  notebook has finished, so that no simulation competes with its processes for the cores;
- checks every parameter of a profile against ``papermill.inspect_notebook`` before running
  anything (papermill itself only logs an unknown name and runs with the defaults);
- runs every notebook it can: a failing notebook is named with its cell and error, the others
  still run and have their claims merged and their stamps written; a summary at the end lists the
  failures and the exit status is 1. A failed notebook's records in ``claims.json`` stay those of
  its last successful run (the summary says so), and since it is not stamped, the next run executes
  only the failed and unfinished notebooks;
- skips a notebook whose inputs and outputs are unchanged since it last succeeded (make's rule,
  :func:`stamp_key`): the notebook file, every module of the package, the profile, its
  parameters, the MNIST digits' content and the versions of the libraries that draw and compute; its
  executed copy, ledger and figures must still be there byte for byte (SHA-256). ``--force``
  re-executes every notebook anyway;
- prints the time of each notebook and writes them to ``build/reproduce-times.json``;
- sets ``SOURCE_DATE_EPOCH`` so that regenerated PDFs are byte-identical, and ``TQDM_DISABLE``
  so that executed copies carry no progress-bar widgets;
- merges the claims each notebook recorded (:mod:`stalenb.claims`) into the profile's
  ``claims.json`` after each notebook that succeeds, and — in the paper profile — regenerates the
  README's results table from ``figures/claims.json``.

Two profiles: ``paper`` runs each notebook's own defaults (the values of its ``parameters`` cell
are the paper settings) and writes ``figures/``; ``quick`` sets ``STALENB_QUICK=1``, which every
notebook reads through :func:`stalenb.paths.quick` (nbval knows nothing of papermill parameters, so
quick mode must come from the environment), and writes ``build/quick/figures/``.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
import time
from pathlib import Path

from .. import paths
from ..files import atomic_write

#: The profiles: the notebooks' own defaults (``paper``) or their quick mode (``quick``).
PROFILES = ("paper", "quick")

#: Fixed PDF/PNG timestamp for reproducible figures (2020-01-01T00:00:00Z).
SOURCE_DATE_EPOCH = "1577836800"
DEFAULT_TIMEOUT = 1800  # seconds per cell
NOTEBOOK_PATTERN = re.compile(r"^\d\d_.+\.ipynb$")
#: Notebooks (number prefixes) that run with no other notebook beside them when several run at once:
#: 08 launches real worker processes and compares their measured timing with the simulator's model,
#: which another notebook's busy processes on the same cores would distort.
ALONE = ("08",)


class ReproduceError(RuntimeError):
    """A notebook failed; the message names the notebook, the cell and the error."""


class ReproduceFailures(ReproduceError):
    """Some notebooks failed while the others ran: ``failures`` maps each failed notebook's name to
    its :class:`ReproduceError`; ``times`` holds the seconds of those that succeeded or were skipped."""

    def __init__(self, failures: dict[str, ReproduceError], times: dict[str, float]):
        self.failures, self.times = failures, times
        lines = [f"{len(failures)} notebook(s) failed (their records in claims.json are those of their last "
                 "successful run; a rerun executes only these and the unfinished ones):"]
        lines += [f"  - {exc}" for exc in failures.values()]
        super().__init__("\n".join(lines))


def notebooks(folder: Path | None = None, only=None) -> list[Path]:
    """The numbered notebooks ``NN_name.ipynb`` of ``folder`` in sorted (reading) order.

    ``only``: number prefixes (``"05"``) or names (``"05_mnist..."``, with or without
    ``.ipynb``) to keep; an entry matching nothing raises ``ValueError``.
    """
    folder = paths.notebooks_dir() if folder is None else Path(folder)
    found = sorted(p for p in folder.glob("*.ipynb") if NOTEBOOK_PATTERN.match(p.name))
    if not only:
        return found
    keep = []
    for want in only:
        hits = [p for p in found if p.name.split("_", 1)[0] == want or p.stem == want or p.name == want]
        if not hits:
            names = ", ".join(p.name for p in found) or "(none)"
            raise ValueError(f"--only {want!r} matches no notebook in {folder}; available: {names}")
        keep.extend(h for h in hits if h not in keep)
    return sorted(keep)


def profile_parameters(profile: str, notebook: Path, overrides: dict | None = None) -> dict:
    """The papermill parameters of ``notebook``: its entry of ``overrides`` (number → {name: value}).

    Both profiles run the notebook's own parameters cell (quick mode comes from the environment),
    so only explicit overrides are passed; ``profile`` is validated here.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(map(repr, PROFILES))}, got {profile!r}")
    return dict((overrides or {}).get(notebook.name.split("_", 1)[0], {}))


def check_parameters(notebook: Path, params: dict) -> None:
    """Raise ``ValueError`` if a name in ``params`` is not in the notebook's ``parameters`` cell."""
    if not params:
        return
    import papermill

    known = papermill.inspect_notebook(str(notebook))
    unknown = sorted(set(params) - set(known))
    if unknown:
        allowed = ", ".join(sorted(known)) or "(the notebook has no cell tagged 'parameters')"
        raise ValueError(
            f"unknown papermill parameter(s) {unknown} for {notebook.name}; its parameters cell "
            f"defines: {allowed}"
        )


def parse_override(text: str) -> tuple[str, str, object]:
    """``"05:seeds=5"`` → ``("05", "seeds", 5)`` (the value is a Python literal, else a string)."""
    m = re.fullmatch(r"(\d\d):([A-Za-z_]\w*)=(.*)", text.strip())
    if not m:
        raise ValueError(f"a parameter override must look like NN:name=value (e.g. 05:seeds=5), got {text!r}")
    number, name, raw = m.groups()
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return number, name, value


def _failure(nb: Path, exc) -> ReproduceError:
    cell = getattr(exc, "cell_index", None)
    count = getattr(exc, "exec_count", None)
    ename, evalue = getattr(exc, "ename", type(exc).__name__), getattr(exc, "evalue", str(exc))
    source = (getattr(exc, "source", "") or "").strip().splitlines()
    first = f" ({source[0][:80]!r} …)" if source else ""
    where = f"cell {cell} (execution count {count}){first}" if cell is not None else "setup"
    return ReproduceError(f"{nb.name} failed in {where}: {ename}: {evalue}")


def run_notebook(nb: Path, out_dir: Path, params: dict, timeout: int = DEFAULT_TIMEOUT,
                 log_output: bool = False) -> float:
    """Execute one notebook with papermill into ``out_dir``; return its wall time in seconds."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(nb), str(out_dir / nb.name), parameters=params, kernel_name="python3",
            cwd=str(nb.parent), execution_timeout=timeout, progress_bar=False,
            log_output=log_output,
        )
    except PapermillExecutionError as exc:
        raise _failure(nb, exc) from exc
    except Exception as exc:  # kernel died, timeout, bad notebook JSON, ...
        raise ReproduceError(f"{nb.name} failed: {type(exc).__name__}: {exc}") from exc
    return time.perf_counter() - start


#: Libraries whose version can change a notebook's numbers or figures (part of :func:`stamp_key`).
STAMP_LIBRARIES = ("torch", "torchvision", "numpy", "scipy", "pandas", "matplotlib", "seaborn", "papermill")


def stamp_key(nb: Path, profile: str, params: dict) -> str:
    """What a notebook's executed copy, ledger and figures depend on, as one SHA-256: the notebook
    file, every module of the package (:func:`stalenb.cache.source_hash`), the profile, the
    parameters, the MNIST digits' content (:func:`stalenb.cache.data_fingerprint`), quick mode and
    :data:`STAMP_LIBRARIES`' versions."""
    import hashlib
    from importlib import metadata

    from ..cache import data_fingerprint, source_hash

    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    payload = {"notebook": hashlib.sha256(nb.read_bytes()).hexdigest(), "package": source_hash(),
               "profile": profile, "params": params, "quick": paths.quick(),
               "data": data_fingerprint(fetch=False), "libraries": {n: version(n) for n in STAMP_LIBRARIES}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _outputs(nb: Path, out_dir: Path, profile: str, publish: bool) -> list[Path]:
    """The files a run of ``nb`` leaves: its executed copy, its ``NN_*`` figures and its ledger (when
    it records claims: a notebook that records none, such as the overview, leaves no ledger file)."""
    from .. import claims

    number = nb.name.split("_", 1)[0]
    found = [out_dir / nb.name, *sorted(paths.figures_dir(profile).glob(f"{number}_*"))]
    ledger = claims.ledger_dir(profile) / f"{number}.json"
    return found + ([ledger] if publish and ledger.is_file() else [])


def _digests(files) -> dict[str, str | None]:
    import hashlib

    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() if f.is_file() else None for f in files}


def _stamp_path(nb: Path, out_dir: Path) -> Path:
    return out_dir / f"{nb.stem}.stamp.json"


def unchanged(nb: Path, out_dir: Path, key: str) -> bool:
    """True when ``nb`` last succeeded with :func:`stamp_key` ``key`` and left outputs that are
    all still there, unmodified."""
    try:
        stamp = json.loads(_stamp_path(nb, out_dir).read_text())
    except (OSError, ValueError):
        return False
    if stamp.get("key") != key:
        return False
    outputs = stamp.get("outputs", {})
    return all(v is not None for v in outputs.values()) and _digests(map(Path, outputs)) == outputs


def _stamp(nb: Path, out_dir: Path, profile: str, key: str, publish: bool) -> None:
    """Record a successful run of ``nb``: ``key`` (its :func:`stamp_key`, taken before it started,
    so that an edit made while it ran is not credited to it) and the digests of its outputs."""
    record = {"key": key, "outputs": _digests(_outputs(nb, out_dir, profile, publish))}
    with atomic_write(_stamp_path(nb, out_dir)) as fh:
        fh.write(json.dumps(record, indent=1) + "\n")


def _worker_setup(max_jobs: int) -> None:
    """In each runner process: cap the grids' worker processes (``STALENB_MAX_JOBS``, read by
    :func:`stalenb.experiments.run_all`), so that notebooks running side by side keep about one busy
    process per core instead of each starting its own pool."""
    os.environ["STALENB_MAX_JOBS"] = str(max_jobs)


def reproduce(profile: str = "paper", only=None, overrides: dict | None = None,
              timeout: int = DEFAULT_TIMEOUT, out_dir: Path | None = None, log_output: bool = False,
              folder: Path | None = None, verbose: bool = True, publish: bool | None = None,
              jobs: int = 1, force: bool = False) -> dict[str, float]:
    """Run the notebooks; return ``{notebook name: seconds}`` (0.0 for a notebook skipped as
    :func:`unchanged`; ``force=True`` executes every notebook).

    All parameters are checked before the first notebook starts. ``jobs`` notebooks run at once
    (``python -m stalenb.repro.reproduce``: the number of cores), each in its own process and
    papermill kernel, started in reading order; while several run, each kernel's grids run
    in-process (``STALENB_MAX_JOBS=1``), so the busy processes stay about one per core. Results are
    taken in reading order: the times and the output lines come in that order, and each notebook
    that succeeds has its claims merged (``publish``) and its stamp written. A failing notebook does
    not stop the others: after every notebook has run, :class:`ReproduceFailures` names each failure
    with its cell and error. ``publish`` (default: True for the project's own notebooks, False for
    another ``folder``) merges each notebook's claims into the profile's ``claims.json`` and, in
    the paper profile, regenerates the README table.
    """
    from .. import claims

    publish = folder is None if publish is None else publish
    nbs = notebooks(folder, only)
    if not nbs:
        raise ValueError(f"no notebooks NN_*.ipynb found in {folder or paths.notebooks_dir()}")
    plan = [(nb, profile_parameters(profile, nb, overrides)) for nb in nbs]
    for nb, params in plan:
        check_parameters(nb, params)
    os.environ.setdefault("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    if profile == "quick":
        os.environ["STALENB_QUICK"] = "1"
    out_dir = paths.build_dir() / "notebooks" if out_dir is None else Path(out_dir)
    times: dict[str, float] = {}
    failures: dict[str, ReproduceError] = {}
    echo = print if verbose else (lambda *a, **k: None)
    echo(f"stalenb.repro.reproduce: profile {profile!r}, {len(plan)} notebook(s) -> {out_dir}")
    total = time.perf_counter()
    keys = {nb: stamp_key(nb, profile, params) for nb, params in plan}
    skip = {nb for nb, _ in plan if not force and unchanged(nb, out_dir, keys[nb])}
    with _Launcher(max(1, min(jobs, len(plan) - len(skip)))) as launch:
        pending = {}
        for nb, params in plan:
            def forget(nb=nb):  # a ledger left by an earlier run must not pass for this run's
                _stamp_path(nb, out_dir).unlink(missing_ok=True)
                if publish:
                    (claims.ledger_dir(profile) / f"{nb.name.split('_', 1)[0]}.json").unlink(missing_ok=True)

            job = (forget, run_notebook, nb, out_dir, params, timeout, log_output)
            if nb in skip:
                pending[nb] = lambda: 0.0
            elif launch.pool is not None and nb.name.split("_", 1)[0] in ALONE:
                pending[nb] = lambda job=job: (launch.drain(), launch(*job)())[1]  # when the others are done
            else:
                pending[nb] = launch(*job)
        for nb, params in plan:
            shown = f" {params}" if params else ""
            echo(f"  {'unchanged' if nb in skip else 'running'} {nb.name}{shown}", flush=True)
            try:
                times[nb.name] = pending[nb]()
            except ReproduceError as exc:
                failures[nb.name] = exc
                echo(f"  FAILED   {exc}", flush=True)
                continue
            except BaseException:
                launch.cancel()
                raise
            finally:
                _write_times(out_dir, profile, times)
            if publish:
                claims.collect([nb.name.split("_", 1)[0]], profile)
            if nb not in skip:
                _stamp(nb, out_dir, profile, keys[nb], publish)
            echo(f"  {times[nb.name]:7.1f} s  {nb.name}{' (unchanged, not re-executed)' if nb in skip else ''}",
                 flush=True)
    if publish and profile == "paper":
        ledger = claims.load(paths.figures_dir("paper") / "claims.json")
        if claims.update_readme(paths.repo_root() / "README.md", ledger):
            echo("  README.md results table regenerated from figures/claims.json")
    echo(f"  total {time.perf_counter() - total:7.1f} s; figures in {paths.figures_dir(profile)}")
    if failures:
        raise ReproduceFailures(failures, times)
    return times


class _Launcher:
    """``launch(prepare, fn, *args)`` → a callable returning ``fn(*args)``, with ``prepare()`` run
    just before: both when the callable is called (``jobs`` 1, one notebook after the other), or
    ``prepare()`` now and ``fn`` submitted to a pool of ``jobs`` spawned processes (more)."""

    def __init__(self, jobs: int):
        self.pool = None
        if jobs > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"),
                                            initializer=_worker_setup, initargs=(1,))
        self.futures = []

    def __call__(self, prepare, fn, *args):
        if self.pool is None:
            return lambda: (prepare(), fn(*args))[1]
        prepare()
        self.futures.append(self.pool.submit(fn, *args))
        return self.futures[-1].result

    def drain(self) -> None:
        """Wait until every job submitted so far has ended (their results stay with them)."""
        from concurrent.futures import wait

        wait(self.futures)

    def cancel(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.shutdown(wait=True)


def _times_path(out_dir: Path) -> Path:
    return out_dir.parent / "reproduce-times.json"


def _write_times(out_dir: Path, profile: str, times: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"profile": profile, "seconds": {k: round(v, 2) for k, v in times.items()}}
    with atomic_write(_times_path(out_dir)) as fh:
        fh.write(json.dumps(record, indent=2) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stalenb.repro.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="quick profile (STALENB_QUICK=1)")
    parser.add_argument("--profile", choices=sorted(PROFILES), help="profile (default: paper, or quick with --quick)")
    parser.add_argument("--only", nargs="+", metavar="NN", help="notebook numbers or names to run")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NN:name=value",
                        help="override a parameter of notebook NN (repeatable)")
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help="seconds per cell (default %(default)s)")
    parser.add_argument("--log-output", action="store_true", help="echo the notebooks' output")
    parser.add_argument("--jobs", type=int, default=None,
                        help="notebooks run at once (default: the number of cores; 1: one after the other)")
    parser.add_argument("--force", action="store_true",
                        help="execute every notebook, also those whose inputs and outputs are unchanged")
    parser.add_argument("--list", action="store_true", help="list the notebooks and their parameters, run nothing")
    parser.add_argument("--readme", action="store_true",
                        help="only regenerate README.md's results table from figures/claims.json")
    args = parser.parse_args(argv)
    quick_env = paths.quick()
    profile = args.profile or ("quick" if args.quick or quick_env else "paper")
    try:
        overrides: dict[str, dict] = {}
        for text in args.param:
            number, name, value = parse_override(text)
            overrides.setdefault(number, {})[name] = value
        if args.readme:
            from .. import claims

            ledger = claims.load(paths.figures_dir("paper") / "claims.json")
            changed = claims.update_readme(paths.repo_root() / "README.md", ledger)
            print(f"README.md results table {'regenerated' if changed else 'already up to date'} "
                  f"({len(ledger)} records)")
            return 0
        if args.list:
            import papermill

            for nb in notebooks(only=args.only):
                names = ", ".join(papermill.inspect_notebook(str(nb))) or "(no parameters cell)"
                print(f"{nb.name}: {names}")
            return 0
        reproduce(profile, args.only, overrides, args.timeout, log_output=args.log_output,
                  jobs=args.jobs or os.cpu_count() or 1, force=args.force)
    except (ReproduceError, ValueError) as exc:
        print(f"\nstalenb.repro.reproduce: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
