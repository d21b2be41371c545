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


def test_runs_in_order_writes_copies_and_stops_at_the_first_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", reproduce.SOURCE_DATE_EPOCH)
    src, out = tmp_path / "nb", tmp_path / "build" / "notebooks"
    src.mkdir()
    marker = tmp_path / "ran.txt"
    ok = _write(src, "00_ok.ipynb", [f"open({str(marker)!r}, 'a').write(f'00:{{x}} ')"])
    _write(src, "01_fails.ipynb", ["y = 2", "assert x == 1, 'checked claim'", "assert False, 'claim broken'"])
    _write(src, "02_never.ipynb", [f"open({str(marker)!r}, 'a').write('02 ')"])
    before = ok.read_text()
    with pytest.raises(reproduce.ReproduceError) as err:
        reproduce.reproduce("paper", folder=src, out_dir=out, overrides={"00": {"x": 7}}, timeout=120, verbose=False)
    msg = str(err.value)
    assert "01_fails.ipynb" in msg and "cell" in msg and "AssertionError" in msg and "claim broken" in msg
    assert marker.read_text() == "00:7 "  # 00 ran with the override, 02 never started
    assert (out / "00_ok.ipynb").is_file() and ok.read_text() == before  # sources untouched
    times = json.loads((out.parent / "reproduce-times.json").read_text())
    assert list(times["seconds"]) == ["00_ok.ipynb"]


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


def test_paper_run_collects_the_ledger_and_regenerates_the_readme(tmp_path, monkeypatch):
    """End to end in a scratch project: a notebook records a claim → figures/claims.json → README."""
    from stalenb import claims

    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    (root / "README.md").write_text(f"# x\n{claims.README_START}\nstale text\n{claims.README_END}\n")
    record = ("from stalenb import claims\n"
              "led = claims.Ledger('00', source='a seed')\n"
              "led.record('00.demo', quote='q', test='t', statistic=0.5, ci_low=0.2, ci_high=0.8, threshold=x)")
    _write(root / "notebooks", "00_demo.ipynb", [record], params="x = 0.0  # threshold")
    monkeypatch.setenv("STALENB_ROOT", str(root))
    monkeypatch.delenv("STALENB_QUICK", raising=False)
    monkeypatch.delenv("STALENB_FIGURES", raising=False)
    reproduce.reproduce("paper", timeout=300, verbose=False)
    ledger = claims.load(root / "figures" / "claims.json")
    assert [(r["id"], r["verdict"], r["profile"]) for r in ledger] == [("00.demo", "holds", "paper")]
    assert "`00.demo`" in claims.readme_block(root / "README.md")
    reproduce.reproduce("paper", overrides={"00": {"x": 0.9}}, timeout=300, verbose=False)
    assert claims.load(root / "figures" / "claims.json")[0]["verdict"] == "fails"
    assert "**fails**" in claims.readme_block(root / "README.md")


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
    recorded = json.loads((out.parent / "reproduce-times.json").read_text())["seconds"]["00_a.ipynb"]
    assert recorded == round(executed, 2) > 0  # the skip keeps the last execution's time (start order)
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
