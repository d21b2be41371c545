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
