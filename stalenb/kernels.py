"""Jupyter kernels for the notebook runner (:mod:`stalenb.repro.reproduce`): over IPC, forked warm.

:func:`kernel_manager` is jupyter_client's ``AsyncKernelManager`` with two changes:

- it talks to its kernel over IPC (Unix domain sockets in a private temporary folder) instead of
  TCP on localhost: nothing listens on a port, and jupyter_client's "connecting over TCP without
  encryption" warning has no cause;
- a Python kernel of this interpreter is **forked from a zygote**, a process that has already
  imported what every notebook imports (:data:`PRELOAD`: torch, numpy, pandas, matplotlib,
  seaborn + scipy, stalenb, ipykernel). A fresh ``python -m ipykernel_launcher`` spends 7–8 s of
  CPU on those imports and on its own start before a notebook's first cell does anything (measured
  2026-11-23 on the 2-core reference machine, about half of a warm ``make reproduce --force``); the
  zygote pays it once per runner process. The forked kernel is the kernel a fresh process would be
  — same interpreter, same environment variables and working directory (those of the launch, sent
  by the stub), its own session and ``sys.argv`` — except that the modules in :data:`PRELOAD` are
  already imported (they read their environment when the zygote imported them, which is the
  runner's environment: :func:`stalenb.repro.reproduce.reproduce` sets ``MPLBACKEND``, ``TQDM_DISABLE``
  and ``STALENB_QUICK`` before any kernel starts).

How (the design of ``multiprocessing``'s forkserver, for kernels): jupyter_client launches
``stalenb/_kernel_stub.py`` in place of ``-m ipykernel_launcher``; the stub sends its argv,
working directory, environment and standard streams over a Unix socket to the zygote
(:func:`serve`), which forks; the child becomes the kernel. The stub forwards the manager's signals
(interrupt, terminate) to the kernel and exits with its status; if the stub is killed, the zygote
kills the kernel. The zygote exits with the process that started it. The zygote imports but
computes nothing (no thread pool of torch or BLAS is started before the fork).
``STALENB_FORK_KERNELS=0`` starts every kernel the ordinary way.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

#: What the zygote imports before it forks kernels: every library the notebooks import (and what
#: they pull in), nothing that computes at import. Not ``ipykernel.kernelapp``: its class reads
#: ``JPY_PARENT_PID`` from the environment at import, so each kernel imports it (7 ms) itself.
PRELOAD = ("numpy", "pandas", "scipy.stats", "matplotlib.pyplot", "seaborn", "torch", "torchvision",
           "stalenb", "stalenb.experiments", "stalenb.plotting", "stalenb.speedup", "stalenb.tuning",
           "stalenb.widgets", "ipykernel.ipkernel")

STUB = Path(__file__).with_name("_kernel_stub.py")


def fork_enabled() -> bool:
    """Whether kernels are forked from the zygote (``STALENB_FORK_KERNELS``, default ``1``)."""
    value = os.environ.get("STALENB_FORK_KERNELS", "1")
    if value not in ("0", "1"):
        raise ValueError(f"STALENB_FORK_KERNELS must be '0' or '1', got {value!r}")
    return value == "1"


def kernel_manager():
    """The ``AsyncKernelManager`` class the runner hands papermill (``kernel_manager_class``)."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import CaselessStrEnum, default

    class StalenbKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

        @default("ip")
        def _ip_in_own_folder(self) -> str:
            # jupyter_client's default is "kernel-ipc" in the working directory, shared by every
            # kernel started there: kernels running side by side would bind the same sockets
            return str(Path(tempfile.mkdtemp(prefix="stalenb-kernel-")) / "kernel")

        def cleanup_ipc_files(self) -> None:
            super().cleanup_ipc_files()
            folder = Path(self.ip).parent
            if folder.name.startswith("stalenb-kernel-"):
                shutil.rmtree(folder, ignore_errors=True)

        def format_kernel_cmd(self, extra_arguments=None) -> list[str]:
            cmd = super().format_kernel_cmd(extra_arguments)
            if fork_enabled() and cmd[0] == sys.executable and cmd[1:3] == ["-m", "ipykernel_launcher"]:
                # interrupt by message, not by a signal relayed through the stub: jupyter_client
                # interrupts every kernel just before it asks it to shut down, and a relayed
                # SIGINT could land while the kernel handles that request
                self.kernel_spec.interrupt_mode = "message"
                return [sys.executable, str(STUB), address(), *cmd[3:]]
            return cmd

    return StalenbKernelManager


class Zygote:
    """A :func:`serve` process of this interpreter, started (not yet ready) on construction;
    :meth:`wait` returns its socket address once it listens."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="stalenb-zygote-"))
        self.address = str(self.folder / "socket")
        code = f"from stalenb.kernels import serve; serve({self.address!r}, {os.getpid()})"
        self.process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE)
        self.ready = False

    def wait(self) -> str:
        if not self.ready:
            line = self.process.stdout.readline()
            self.process.stdout.close()
            if line != b"ready\n":
                self.close()
                raise RuntimeError(f"the kernel zygote did not start (exit status {self.process.wait()}); "
                                   "set STALENB_FORK_KERNELS=0 to start kernels the ordinary way")
            self.ready = True
        return self.address

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


_ZYGOTE: Zygote | None = None

#: Environment variable naming the socket of a zygote that a parent process started and shares
#: (:func:`share`): the runner's worker processes fork their kernels from the runner's zygote.
SHARED = "STALENB_KERNEL_ZYGOTE"


def zygote() -> Zygote:
    """This process's zygote, started at the first call (a few seconds: the imports), closed at exit."""
    global _ZYGOTE
    if _ZYGOTE is None or _ZYGOTE.process.poll() is not None:
        _ZYGOTE = Zygote()
        atexit.register(_ZYGOTE.close)
    return _ZYGOTE


def share() -> None:
    """Start this process's zygote now (it boots while the caller goes on) and name it in the
    environment (:data:`SHARED`), so that child processes started from here on fork their
    kernels from it instead of each starting its own."""
    os.environ[SHARED] = zygote().address


def address() -> str:
    """The socket of the zygote to fork kernels from: the shared one, else this process's own."""
    shared = os.environ.get(SHARED)
    if shared and (_ZYGOTE is None or shared != _ZYGOTE.address):
        return shared  # a parent's: the stub waits for it to listen
    return zygote().wait()


def serve(address: str, parent: int) -> None:
    """The zygote: import :data:`PRELOAD`, listen at ``address``, fork a kernel per stub that
    connects, report each kernel's pid and exit status to its stub; exit when ``parent`` exits
    (checked every second) or on SIGTERM, killing the kernels still running."""
    if sys.path and sys.path[0] == "":  # `python -c` puts the launch directory first; a kernel
        del sys.path[0]                 # gets the notebook's from IPython, as a fresh one does
    for name in PRELOAD:
        importlib.import_module(name)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(16)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    kernels: dict[int, socket.socket | None] = {}  # pid → its stub's connection (None once gone)
    print("ready", flush=True)
    try:
        while os.getppid() == parent:
            stubs = [c for c in kernels.values() if c is not None]
            readable, _, _ = select.select([listener, wake_r, *stubs], [], [], 1.0)
            for ready in readable:
                if ready is listener:
                    conn, _ = listener.accept()
                    pid = _fork_kernel(conn, inherited=[listener, wake_r, wake_w, *stubs])
                    if pid:
                        kernels[pid] = conn
                elif ready == wake_r:
                    os.read(wake_r, 4096)
                elif not ready.recv(1):  # the stub has gone (killed): so goes its kernel
                    pid = next(p for p, c in kernels.items() if c is ready)
                    _kill(pid)
                    ready.close()
                    kernels[pid] = None
            _reap(kernels)
    finally:
        for pid in kernels:
            _kill(pid)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap(kernels: dict) -> None:
    for pid in list(kernels):
        done, status = os.waitpid(pid, os.WNOHANG)
        if not done:
            continue
        conn = kernels.pop(pid)
        if conn is not None:
            try:
                conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
            except OSError:
                pass
            conn.close()


def _fork_kernel(conn: socket.socket, inherited: list) -> int:
    """Read one stub's request and fork its kernel; return the kernel's pid (0 if the request
    was cut short). In the child: become the kernel and never return."""
    header, fds, _, _ = socket.recv_fds(conn, 8, 3)
    size, payload = int.from_bytes(header, "big"), b""
    while len(payload) < size:
        chunk = conn.recv(size - len(payload))
        if not chunk:
            break
        payload += chunk
    if len(header) < 8 or len(payload) < size or len(fds) != 3:
        for fd in fds:
            os.close(fd)
        conn.close()
        return 0
    request = json.loads(payload)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        for fd in fds:
            os.close(fd)
        conn.sendall(f"{pid}\n".encode())
        return pid
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        for item in (*inherited, conn):
            item.close() if isinstance(item, socket.socket) else os.close(item)
        os.setsid()  # a session of its own, like a kernel jupyter_client starts itself
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        from ipykernel import kernelapp

        sys.argv = [importlib.util.find_spec("ipykernel_launcher").origin, *request["argv"]]

        kernelapp.launch_new_instance(argv=request["argv"])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()  # what the interpreter runs at exit (IPython's, torch's, …)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
