"""``python -m stalenb.distributed`` on bad input and ``--help`` (issue 25, item 4): a bad value is one
usage line and one error line naming the option and what it allows, exit status 2, no traceback —
whether argparse or a ``Config`` check rejects it — and ``--help`` shows every option's default."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import stalenb as sn
from stalenb.distributed import __main__ as entry
from stalenb.distributed.cli import USAGE, parser

# (arguments, what the error line must say): each names the option and the allowed values
BAD = [
    (["--workers", "-1"], "--workers must be an integer >= 1, got -1"),
    (["--workers", "0"], "--workers must be an integer >= 1, got 0"),
    (["--workers", "two"], "argument --workers: invalid int value: 'two'"),
    ([], "--workers N is required without torchrun"),
    (["--workers", "2", "--protocol", "ring"], "argument --protocol: invalid choice: 'ring' (choose from 'sync', 'async', 'k-of-n')"),
    (["--workers", "2", "--lr", "-1"], "--lr must be a finite number > 0, got -1.0"),
    (["--workers", "2", "--protocol", "k-of-n", "--k", "3"], "--k must satisfy 1 <= k <= workers (2), got k=3"),
    (["--workers", "2", "--eval-size", "0"], "--eval-size must be an integer >= 1, got 0"),
    (["--workers", "2", "--slowdown", "gamma", "2"],
     "--slowdown must start with one of no-slowdown, shifted-exponential, log-normal, straggler, pareto, none, got 'gamma'"),
    (["--workers", "2", "--slowdown", "straggler", "0.1", "x"], "--slowdown straggler takes P FACTOR (numbers), got 0.1 x"),
    (["--workers", "2", "--slowdown", "straggler", "2", "3"], "--slowdown straggler takes P FACTOR: p must be"),
    (["--workers", "2", "--staleness", "constant", "2"], "--staleness must be None for real runs"),
    (["--workers", "2", "--factors", "0.5", "1"], "argument --factors: must be a number >= 1, got '0.5'"),
    (["--workers", "2", "--factors", "2"], "--factors needs one number >= 1 per worker (2), got 1"),
    (["--workers", "2", "--threads", "0"], "argument --threads: must be an integer >= 1, got '0'"),
    (["--workers", "2", "--timeout", "-5"], "argument --timeout: must be a number of seconds > 0, got '-5'"),
]


def _one_error(err: str, expected: str) -> None:
    lines = err.strip().splitlines()
    assert lines == [f"usage: {USAGE}", lines[1]], err
    assert lines[1].startswith("python -m stalenb.distributed: error: ") and expected in lines[1], err


@pytest.mark.parametrize("argv,expected", BAD, ids=[" ".join(a) or "no-args" for a, _ in BAD])
def test_a_bad_value_is_one_usage_line_and_one_error_line_with_status_2(argv, expected, capsys, monkeypatch):
    for name in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as exit_:
        entry.main(argv)  # every case is rejected before a process starts
    assert exit_.value.code == 2
    _one_error(capsys.readouterr().err, expected)


def test_under_torchrun_a_bad_value_stops_each_rank_with_the_same_line(capsys, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(SystemExit) as exit_:
        entry.main(["--lr", "0"])
    assert exit_.value.code == 2
    _one_error(capsys.readouterr().err, "--lr must be a finite number > 0, got 0.0")


def _command(*args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    env["COLUMNS"] = "1000"   # no wrapping: argparse breaks words at hyphens ("shifted- exponential")
    return subprocess.run([sys.executable, "-m", "stalenb.distributed", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_the_command_with_workers_minus_one_prints_two_lines_and_exits_2():
    done = _command("--workers", "-1")
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    _one_error(done.stderr, "--workers must be an integer >= 1, got -1")


def test_help_shows_every_default():
    done = _command("--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())  # argparse wraps lines
    defaults = sn.Config()
    # by hand, from Config()'s values, as typed on the command line
    for shown in ["--protocol {sync,async,k-of-n}", "(default: async)", f"(default: {defaults.lr})",
                  "(default: shifted-exponential 0.5)", "(default: --no-error-feedback)", "(default: --download)",
                  "(default: 1000)", "(default: none)", "(default: 60.0)", "(default: 127.0.0.1)",
                  "--staleness KIND [NUMBER ...]", "learning rate"]:
        assert shown in text, shown
    missing = [a.option_strings[0] for a in parser()._actions
               if a.option_strings[0] not in ("-h", "--workers") and "(default: " not in (a.help or "")]
    assert missing == [], f"options without their default in --help: {missing}"
