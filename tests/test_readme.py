"""The README's results block is generated from the committed ledger, never typed by hand."""

from stalenb import claims, paths


def test_readme_results_block_equals_the_ledger():
    readme = paths.repo_root() / "README.md"
    ledger = claims.load(paths.figures_dir("paper") / "claims.json")
    assert claims.readme_block(readme) == claims.readme_table(ledger), (
        "README.md's results block differs from figures/claims.json; run `make reproduce` "
        "(or `python -m stalenb.repro.reproduce --readme` to regenerate the block only)")


def test_every_figure_the_ledger_names_is_committed():
    ledger = claims.load(paths.figures_dir("paper") / "claims.json")
    missing = sorted({f for r in ledger for f in r["figures"]
                      if not (paths.figures_dir("paper") / f"{f}.png").is_file()})
    assert not missing, f"figures named by the ledger but absent from figures/: {missing}"


def test_every_committed_record_has_a_role_and_a_consistent_answer():
    ledger = claims.load(paths.figures_dir("paper") / "claims.json")
    assert ledger, "figures/claims.json is empty"
    claims.validate(ledger)   # raises naming every record without a role, or whose answer and verdict disagree


def test_quick_start_code_runs_as_a_script(tmp_path):
    """The README's first Python block, pasted into a file and run with ``python file.py`` from another
    directory (shortened to 20 updates: the test checks the API the README shows, not the accuracy)."""
    import os
    import re
    import subprocess
    import sys

    text = (paths.repo_root() / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert "steps=300" in code, "the quick start changed: update this test's shortening"
    script = tmp_path / "first.py"
    script.write_text(code.replace("steps=300", "steps=20").replace("eval_every=50", "eval_every=10"))
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line for line in out.stdout.splitlines() if "test accuracy" in line]
    assert len(lines) == 2 and "after 20 updates" in lines[0], out.stdout


def test_trace_replay_example_runs_from_the_repository_root(tmp_path):
    """The README's trace-replay block, as a script run from the repository root (its files are in tests/data)."""
    import os
    import re
    import subprocess
    import sys

    text = (paths.repo_root() / "README.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "traces.delay_trace" in b)
    script = tmp_path / "replay.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], cwd=paths.repo_root(), capture_output=True, text=True,
                         timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "staleness" in out.stdout, out.stdout
