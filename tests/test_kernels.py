"""The notebook runner's kernels (``stalenb.kernels``): IPC sockets of their own, and kernels forked
from a zygote that behave like fresh ones — environment, working directory, session, signals,
timeouts, and no kernel outliving its stub."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import nbformat
import pytest

from stalenb import kernels
from stalenb.repro import reproduce

from helpers import notebook

#: A cell that reports what a kernel process looks like from inside, as JSON on stdout.
PROBE = """\
import json, os, sys
preloaded = "torch" in sys.modules
print(json.dumps({"preloaded": preloaded, "cwd": os.getcwd(), "mark": os.environ.get("STALENB_TEST_MARK"),
                  "session_leader": os.getsid(0) == os.getpid(), "argv0": os.path.basename(sys.argv[0]),
                  "x": x}))
"""


def _probe(tmp_path, monkeypatch, fork: str) -> dict:
    folder = tmp_path / f"fork{fork}"
    folder.mkdir()
    monkeypatch.setenv("STALENB_FORK_KERNELS", fork)
    monkeypatch.setenv("STALENB_TEST_MARK", f"mark-{fork}")
    nb = notebook(folder, "00_probe.ipynb", PROBE)
    reproduce.run_notebook(nb, tmp_path / "out", {"x": 7}, timeout=120)
    out = nbformat.read(tmp_path / "out" / nb.name, as_version=4)
    return json.loads(out.cells[-1].outputs[0]["text"])


def _zygote_children() -> set[int]:
    pid = kernels.zygote().process.pid
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(p) for p in (task / "children").read_text().split()}
    return found


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if pid not in _zygote_children():
            return True
        time.sleep(0.1)
    return False


def test_kernel_managers_get_their_own_socket_folders():
    cls = kernels.kernel_manager()
    a, b = cls(kernel_name="python3"), cls(kernel_name="python3")
    assert a.transport == "ipc" and a.ip != b.ip
    for km in (a, b):
        folder = Path(km.ip).parent
        assert folder.is_dir()
        km.cleanup_ipc_files()
        assert not folder.exists()


def test_a_forked_kernel_looks_like_a_fresh_one_except_for_its_imports(tmp_path, monkeypatch):
    forked, fresh = _probe(tmp_path, monkeypatch, "1"), _probe(tmp_path, monkeypatch, "0")
    assert forked["preloaded"] and not fresh["preloaded"]  # the zygote's imports, and only there
    for seen, fork in ((forked, "1"), (fresh, "0")):
        assert seen["cwd"] == str(tmp_path / f"fork{fork}")  # papermill's cwd, not the zygote's
        assert seen["mark"] == f"mark-{fork}"  # the environment of this launch
        assert seen["session_leader"] and seen["argv0"] == "ipykernel_launcher.py" and seen["x"] == 7


def test_a_forked_kernel_past_its_cell_timeout_is_stopped(tmp_path, monkeypatch):
    monkeypatch.setenv("STALENB_FORK_KERNELS", "1")
    nb = notebook(tmp_path, "00_slow.ipynb", "import time\ntime.sleep(600)")
    before = _zygote_children()
    start = time.monotonic()
    with pytest.raises(reproduce.ReproduceError, match="00_slow.ipynb failed"):
        reproduce.run_notebook(nb, tmp_path / "out", {}, timeout=3)
    assert time.monotonic() - start < 60
    assert all(_gone(pid, 10) for pid in _zygote_children() - before)


def test_a_kernel_dies_with_its_stub(monkeypatch):
    monkeypatch.setenv("STALENB_FORK_KERNELS", "1")

    async def start_and_kill_stub():
        km = kernels.kernel_manager()(kernel_name="python3")
        before = _zygote_children()
        await km.start_kernel()
        try:
            deadline = time.monotonic() + 30
            while not _zygote_children() - before and time.monotonic() < deadline:
                await asyncio.sleep(0.05)  # start_kernel returns once the stub runs; the fork follows
            (kernel,) = _zygote_children() - before
            stub = km.provisioner.process
            assert Path(stub.args[1]).name == "_kernel_stub.py"
            os.kill(stub.pid, signal.SIGKILL)  # what jupyter_client does when a kernel will not stop
            assert _gone(kernel, 10)
        finally:
            await km.shutdown_kernel(now=True)

    asyncio.run(start_and_kill_stub())


def test_fork_switch_is_checked(monkeypatch):
    monkeypatch.setenv("STALENB_FORK_KERNELS", "yes")
    with pytest.raises(ValueError, match="STALENB_FORK_KERNELS must be '0' or '1', got 'yes'"):
        kernels.fork_enabled()
