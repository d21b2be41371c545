"""The process jupyter_client starts for a kernel forked by :mod:`stalenb.kernels`' zygote.

Run by path (``python .../_kernel_stub.py ADDRESS -f CONNECTION_FILE``), standard library only, so
that it starts in milliseconds: it hands the zygote its argv, working directory, environment and
standard streams (the three file descriptors, over the Unix socket), forwards every signal the
kernel manager sends it (interrupt, terminate) to the forked kernel, and exits with the kernel's
exit status. If the stub itself is killed, the zygote sees its socket close and kills the kernel.
"""

import json
import os
import signal
import socket
import sys
import time

#: How long to wait for the zygote to listen (its imports take a few seconds; 20 on a busy machine).
BOOT_S = 120

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def main(address: str, argv: list[str]) -> int:
    deadline = time.monotonic() + BOOT_S
    while True:  # a shared zygote may still be importing (kernels.share starts it without waiting)
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(address)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            conn.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    payload = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    socket.send_fds(conn, [len(payload).to_bytes(8, "big")], [0, 1, 2])
    conn.sendall(payload)
    replies = conn.makefile("rb")
    pid = int(replies.readline())
    for sig in FORWARDED:
        signal.signal(sig, lambda signum, _frame: os.kill(pid, signum))
    line = replies.readline()  # the kernel's exit status, once it has exited (retried after signals, PEP 475)
    code = int(line) if line.strip() else 1
    if code < 0:  # killed by a signal: die of the same one, as the kernel process itself would have
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
