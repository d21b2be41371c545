"""The papermill pipeline behind ``make reproduce``: order, parameter checks, failures, outputs."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbformat import v4

from stalenb import paths
from stalenb.repro import reproduce

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def _write(folder, name, cells, params="x = 1  # a number"):
    nb = v4.new_notebook(cells=[v4.new_markdown_cell(f"# {name}"),
                                v4.new_code_cell(params, metadata={"tags": ["parameters"]}),
                                *[v4.new_code_cell(c) for c in cells]])
    nb.metadata["kernelspec"] = KERNELSPEC
    path = folder / name
    nbformat.write(nb, path)
    return path


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A scratch project (``notebooks/`` and a README with the results markers) that the runner
    takes for the real one (``STALENB_ROOT``), paper profile; returns its ``notebooks/`` folder."""
    from stalenb import claims

    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    (root / "README.md").write_text(f"# x\n{claims.README_START}\nstale text\n{claims.README_END}\n")
    monkeypatch.setenv("STALENB_ROOT", str(root))
    monkeypatch.delenv("STALENB_QUICK", raising=False)
    monkeypatch.delenv("STALENB_FIGURES", raising=False)
    return root / "notebooks"


def test_notebooks_in_sorted_order_and_only(tmp_path):
    for name in ("02_b.ipynb", "00_a.ipynb", "10_c.ipynb", "notes.ipynb", "1_bad.ipynb"):
        _write(tmp_path, name, [])
    found = [p.name for p in reproduce.notebooks(tmp_path)]
    assert found == ["00_a.ipynb", "02_b.ipynb", "10_c.ipynb"]
    assert [p.name for p in reproduce.notebooks(tmp_path, ["10", "00_a"])] == ["00_a.ipynb", "10_c.ipynb"]
    with pytest.raises(ValueError, match="'07' matches no notebook"):
        reproduce.notebooks(tmp_path, ["07"])


def test_unknown_parameter_is_an_error_naming_it(tmp_path):
    nb = _write(tmp_path, "00_a.ipynb", [], params="steps = 10  # updates\nseeds = 3  # seeds")
    reproduce.check_parameters(nb, {"steps": 5})
    with pytest.raises(ValueError, match=r"unknown papermill parameter\(s\) \['step'\] for 00_a.ipynb.*seeds, steps"):
        reproduce.check_parameters(nb, {"step": 5})


def test_profile_parameters_are_the_overrides_of_that_notebook():
    nb = paths.notebooks_dir() / "05_x.ipynb"
    assert reproduce.profile_parameters("paper", nb, {"05": {"seeds": 5}, "06": {"n": 1}}) == {"seeds": 5}
    assert reproduce.profile_parameters("quick", nb) == {}
    with pytest.raises(ValueError, match="profile must be one of 'paper', 'quick'"):
        reproduce.profile_parameters("fast", nb)


def test_parse_override():
    assert reproduce.parse_override("05:seeds=5") == ("05", "seeds", 5)
    assert reproduce.parse_override("06:workers=[4, 8]") == ("06", "workers", [4, 8])
    assert reproduce.parse_override("07:model=lenet") == ("07", "model", "lenet")
    with pytest.raises(ValueError, match="NN:name=value"):
        reproduce.parse_override("seeds=5")


def test_a_failing_notebook_costs_only_itself_and_a_rerun_executes_only_it(tmp_path, monkeypatch, capsys):
    """A planted failure in 01: 00 and 02 still run and are stamped, the summary names 01's cell and
    error, the exit status is 1, and the next run executes 01 alone."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", reproduce.SOURCE_DATE_EPOCH)
    monkeypatch.setenv("STALENB_FIGURES", str(tmp_path / "figures"))
    src, out = tmp_path / "nb", tmp_path / "build" / "notebooks"
    src.mkdir()
    marker = tmp_path / "ran.txt"
    ok = _write(src, "00_ok.ipynb", [f"open({str(marker)!r}, 'a').write(f'00:{{x}} ')"])
    bad = _write(src, "01_fails.ipynb", [f"open({str(marker)!r}, 'a').write('01 ')", "assert x == 1, 'checked'",
                                         "assert x == 2, 'planted failure'"])
    _write(src, "02_after.ipynb", [f"open({str(marker)!r}, 'a').write('02 ')"])
    before = ok.read_text()
    with pytest.raises(reproduce.ReproduceFailures) as err:
        reproduce.reproduce("paper", folder=src, out_dir=out, overrides={"00": {"x": 7}}, timeout=120, verbose=False)
    assert list(err.value.failures) == ["01_fails.ipynb"]
    msg = str(err.value)
    assert "01_fails.ipynb failed in cell" in msg and "assert x == 2" in msg and "AssertionError: planted failure" in msg
    assert marker.read_text() == "00:7 01 02 "  # 00 ran with the override, 02 ran after the failure
    assert (out / "00_ok.ipynb").is_file() and ok.read_text() == before  # sources untouched
    assert {p.name for p in out.glob("*.stamp.json")} == {"00_ok.stamp.json", "02_after.stamp.json"}
    times = json.loads((out.parent / "reproduce-times.json").read_text())
    assert list(times["seconds"]) == ["00_ok.ipynb", "02_after.ipynb"]
    # the rerun executes only the failed notebook (00 with its override and 02 are unchanged)
    with pytest.raises(reproduce.ReproduceFailures):
        reproduce.reproduce("paper", folder=src, out_dir=out, overrides={"00": {"x": 7}}, timeout=120, verbose=False)
    assert marker.read_text() == "00:7 01 02 01 "
    bad.write_text(bad.read_text().replace("x == 2", "x == 1"))  # mended: it runs, the others stay skipped
    times = reproduce.reproduce("paper", folder=src, out_dir=out, overrides={"00": {"x": 7}}, timeout=120,
                                verbose=False)
    assert marker.read_text() == "00:7 01 02 01 01 " and times["00_ok.ipynb"] == times["02_after.ipynb"] == 0.0


def test_main_names_every_failure_and_exits_non_zero(project, capsys):
    """``python -m stalenb.repro.reproduce`` on a scratch project with two planted failures."""

    root = project.parent
    _write(project, "00_a.ipynb", ["raise ValueError('first planted')"])
    _write(project, "01_b.ipynb", ["y = x + 1"])
    _write(project, "02_c.ipynb", ["1 / 0"])
    assert reproduce.main(["--jobs", "1", "--timeout", "120"]) == 1
    err = capsys.readouterr().err
    assert "2 notebook(s) failed" in err and "00_a.ipynb failed in cell" in err and "ValueError: first planted" in err
    assert "02_c.ipynb failed in cell" in err and "ZeroDivisionError" in err and "01_b" not in err
    assert (root / "build" / "notebooks" / "01_b.stamp.json").is_file()


def test_a_failed_notebook_keeps_the_records_of_its_last_good_run(project):
    from stalenb import claims

    root = project.parent
    record = ("from stalenb import claims\n"
              "led = claims.Ledger('00', source='a seed')\n"
              "led.record('00.demo', role='claim', quote='q', test='t', statistic=0.5, ci_low=0.2, ci_high=0.8, "
              "threshold=0.0)\n"
              "assert x == 0, 'broken after recording'")
    _write(project, "00_demo.ipynb", [record], params="x = 0  # 0: works")
    reproduce.reproduce("paper", timeout=300, verbose=False)
    good = claims.load(root / "figures" / "claims.json")
    with pytest.raises(reproduce.ReproduceFailures, match="last successful run"):
        reproduce.reproduce("paper", overrides={"00": {"x": 1}}, timeout=300, verbose=False)
    assert claims.load(root / "figures" / "claims.json") == good  # not mixed with the failed run's records


def test_bad_override_fails_before_anything_runs(tmp_path):
    _write(tmp_path, "00_a.ipynb", ["raise SystemExit('must not run')"])
    with pytest.raises(ValueError, match="unknown papermill parameter"):
        reproduce.reproduce("paper", folder=tmp_path, out_dir=tmp_path / "out", overrides={"00": {"nope": 1}},
                            verbose=False)
    assert not (tmp_path / "out").exists()


def test_main_reports_errors_with_exit_code(capsys):
    assert reproduce.main(["--only", "99"]) == 1
    assert "99" in capsys.readouterr().err
    assert reproduce.main(["-p", "bad"]) == 1
    assert reproduce.main(["--list", "--only", "07"]) == 0
    assert "07_speedup.ipynb:" in capsys.readouterr().out


def test_paper_run_collects_the_ledger_and_regenerates_the_readme(project):
    """End to end in a scratch project: a notebook records a claim → figures/claims.json → README."""
    from stalenb import claims

    root = project.parent
    record = ("from stalenb import claims\n"
              "led = claims.Ledger('00', source='a seed')\n"
              "led.record('00.demo', role='claim', quote='q', test='t', statistic=0.5, ci_low=0.2, ci_high=0.8, "
              "threshold=x)")
    _write(project, "00_demo.ipynb", [record], params="x = 0.0  # threshold")
    reproduce.reproduce("paper", timeout=300, verbose=False)
    ledger = claims.load(root / "figures" / "claims.json")
    assert [(r["id"], r["verdict"], r["profile"]) for r in ledger] == [("00.demo", "holds", "paper")]
    assert "`00.demo`" in claims.readme_block(root / "README.md")
    reproduce.reproduce("paper", overrides={"00": {"x": 0.9}}, timeout=300, verbose=False)
    assert claims.load(root / "figures" / "claims.json")[0]["verdict"] == "fails"
    assert "**refutes**" in claims.readme_block(root / "README.md")   # a claim whose verdict fails refutes


def test_an_unchanged_notebook_is_not_executed_again(tmp_path, monkeypatch):
    monkeypatch.setenv("STALENB_FIGURES", str(tmp_path / "figures"))
    src, out = tmp_path / "nb", tmp_path / "build" / "notebooks"
    src.mkdir()
    marker = tmp_path / "ran.txt"
    nb = _write(src, "00_a.ipynb", [f"open({str(marker)!r}, 'a').write(f'{{x}} ')"])

    def run(**kw):
        return reproduce.reproduce("paper", folder=src, out_dir=out, timeout=120, verbose=False, **kw)

    executed = run()["00_a.ipynb"]
    assert run()["00_a.ipynb"] == 0.0  # nothing changed: skipped
    assert marker.read_text() == "1 " and (out / "00_a.stamp.json").is_file()
    assert executed > 0
    run(overrides={"00": {"x": 2}})  # other parameters: executed
    run(overrides={"00": {"x": 2}})
    assert marker.read_text() == "1 2 "
    (out / "00_a.ipynb").write_text("{}")  # an output changed by hand: executed again
    run(overrides={"00": {"x": 2}})
    nb.write_text(nb.read_text().replace("# a number", "# a count"))  # the notebook edited
    run(overrides={"00": {"x": 2}})
    run(overrides={"00": {"x": 2}}, force=True)
    assert marker.read_text() == "1 2 2 2 2 "
    assert not reproduce.unchanged(nb, out, reproduce.stamp_key(nb, "quick", {"x": 2}))  # the profile is part of the key
    assert reproduce.unchanged(nb, out, reproduce.stamp_key(nb, "paper", {"x": 2}))


def test_an_edit_made_while_a_notebook_runs_is_not_credited_to_it(tmp_path, monkeypatch):
    monkeypatch.setenv("STALENB_FIGURES", str(tmp_path / "figures"))
    src, out = tmp_path / "nb", tmp_path / "out"
    src.mkdir()
    path = src / "00_self.ipynb"
    edit = f"p = {str(path)!r}; t = open(p).read(); open(p, 'w').write(t.replace('# a number', '# edited'))"
    _write(src, "00_self.ipynb", [edit])
    reproduce.reproduce("paper", folder=src, out_dir=out, timeout=120, verbose=False)
    assert "# edited" in path.read_text()
    assert not reproduce.unchanged(path, out, reproduce.stamp_key(path, "paper", {}))  # the edited file was not what ran


def test_a_notebook_that_records_no_claim_is_skipped_when_unchanged(project, tmp_path):
    """In the project (ledgers published), a notebook without claims leaves no ledger file: its stamp
    must not wait for one (the overview notebook was re-executed on every run)."""

    marker = tmp_path / "ran.txt"
    _write(project, "00_plain.ipynb", [f"open({str(marker)!r}, 'a').write('ran ')"])
    assert reproduce.reproduce("paper", timeout=300, verbose=False)["00_plain.ipynb"] > 0
    assert reproduce.reproduce("paper", timeout=300, verbose=False)["00_plain.ipynb"] == 0.0
    assert marker.read_text() == "ran "


def test_a_notebook_of_alone_starts_when_every_other_has_finished(tmp_path, monkeypatch):
    """With 2 at once, 08 (real processes, timed: ``reproduce.ALONE``) waits for 07 and 09, which
    run beside each other; times and claims still come in reading order."""
    monkeypatch.setenv("STALENB_FIGURES", str(tmp_path / "figures"))
    src, out, log = tmp_path / "nb", tmp_path / "build" / "notebooks", tmp_path / "log"
    src.mkdir()
    log.mkdir()
    stamp = "import time, pathlib; p = pathlib.Path({d!r}); (p / '{n}.{w}').write_text(repr(time.time()))"
    for n, pause in (("07", 2), ("08", 0), ("09", 2)):
        _write(src, f"{n}_x.ipynb", [stamp.format(d=str(log), n=n, w="start"), f"time.sleep({pause})",
                                     stamp.format(d=str(log), n=n, w="end")])
    times = reproduce.reproduce("paper", folder=src, out_dir=out, timeout=120, verbose=False, jobs=2)
    at = {p.name: float(p.read_text()) for p in log.iterdir()}
    assert at["08.start"] >= max(at["07.end"], at["09.end"])
    assert at["09.start"] < at["07.end"]  # the others did run two at a time
    assert list(times) == ["07_x.ipynb", "08_x.ipynb", "09_x.ipynb"]
