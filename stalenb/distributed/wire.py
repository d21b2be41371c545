"""Messages between the parameter server and its workers, on torch.distributed point-to-point.

A message is an int64 header of :data:`HEADER` fields followed by up to three payload tensors
(float32, int32, float64), each sent with ``torch.distributed.send`` only when non-empty; the
header says how long each one is. Kinds:

| kind | direction | header fields | payloads |
| --- | --- | --- | --- |
| ``JOB`` | server → worker | version read, job id | model x (f32), batch indices (i32) |
| ``CANCEL`` | server → worker | job id | — |
| ``STOP`` | server → worker | — | — |
| ``GRAD`` | worker → server | version read, job id | values (f32), indices (i32, sparse pushes only), timings (f64) |
| ``CANCELLED`` | worker → server | version read, job id | timings (f64) |
| ``BYE`` | worker → server | — | — |

A sparse push carries exactly the kept values and their int32 indices (8 bytes per entry, as
:attr:`stalenb.compress.Compressor.push_bytes` counts); a dense push carries the d values.

Deadlines: gloo cannot poll a pending receive (``is_completed`` stays False and a timed-out
``wait`` breaks the connection), so each peer gets a reader thread doing blocking receives into a
:class:`queue.Queue`; :meth:`Inbox.get` waits on that queue with a timeout. A peer process that
dies closes its socket, its reader sees gloo's "Connection closed by peer" at once and the inbox
raises :class:`PeerLost` naming the rank.
"""

from __future__ import annotations

import queue
import re
import threading
from dataclasses import dataclass

import torch
import torch.distributed as dist

HEADER = 8
JOB, CANCEL, STOP, GRAD, CANCELLED, BYE = 1, 2, 3, 4, 5, 6
KIND_NAMES = {JOB: "JOB", CANCEL: "CANCEL", STOP: "STOP", GRAD: "GRAD", CANCELLED: "CANCELLED", BYE: "BYE"}
_EMPTY_F32 = torch.empty(0, dtype=torch.float32)
_EMPTY_I32 = torch.empty(0, dtype=torch.int32)
_EMPTY_F64 = torch.empty(0, dtype=torch.float64)


class PeerLost(RuntimeError):
    """A peer died, or sent nothing before the deadline. ``rank`` names it (-1: several)."""

    def __init__(self, rank: int, message: str):
        super().__init__(message)
        self.rank = rank


@dataclass
class Message:
    """One message; ``source`` is the sender's rank (set on receipt)."""

    kind: int
    version: int = 0
    job: int = 0
    f32: torch.Tensor = _EMPTY_F32
    i32: torch.Tensor = _EMPTY_I32
    f64: torch.Tensor = _EMPTY_F64
    source: int = -1

    def nbytes(self) -> int:
        """Payload bytes on the wire (the header not counted)."""
        return 4 * self.f32.numel() + 4 * self.i32.numel() + 8 * self.f64.numel()


def send(msg: Message, dst: int, wait: bool = True):
    """Send ``msg`` to rank ``dst``; :class:`PeerLost` if its connection is gone.

    With ``wait=False`` the sends are only posted (gloo completes a send when the peer receives
    it, so a hung peer would block a waiting sender); the returned list keeps the buffers alive.
    """
    head = torch.tensor([msg.kind, msg.version, msg.job, msg.f32.numel(), msg.i32.numel(),
                         msg.f64.numel(), 0, 0], dtype=torch.int64)
    parts = [head] + [p.detach().contiguous().cpu() for p in (msg.f32, msg.i32, msg.f64) if p.numel()]
    try:
        if wait:
            for part in parts:
                dist.send(part, dst)
            return []
        return [(part, dist.isend(part, dst)) for part in parts]
    except RuntimeError as exc:
        raise PeerLost(dst, _reason(dst, exc)) from exc


def recv(src: int) -> Message:
    """Receive the next message from rank ``src`` (blocking)."""
    head = torch.zeros(HEADER, dtype=torch.int64)
    dist.recv(head, src)
    kind, version, job, n32, ni32, n64 = (int(v) for v in head[:6])
    out = []
    for n, dtype in ((n32, torch.float32), (ni32, torch.int32), (n64, torch.float64)):
        buf = torch.empty(n, dtype=dtype)
        if n:
            dist.recv(buf, src)
        out.append(buf)
    return Message(kind, version, job, *out, source=src)


class Inbox:
    """Messages from several peers, merged in arrival order, with deadlines.

    Args:
        peers: ranks to read from (one daemon reader thread each).
        last: the kind after which a peer sends nothing more (its reader thread then ends).
    """

    def __init__(self, peers, last: int):
        self.queue: queue.Queue = queue.Queue()
        self.pending: list[Message] = []
        self.closed: set[int] = set()
        self.stopping = False
        for rank in peers:
            threading.Thread(target=self._read, args=(rank, last), daemon=True,
                             name=f"stalenb-recv-{rank}").start()

    def _read(self, rank: int, last: int) -> None:
        try:
            while True:
                msg = recv(rank)
                self.queue.put(msg)
                if msg.kind == last:
                    return
        except Exception as exc:  # connection closed, process group torn down, ...
            self.queue.put(exc if isinstance(exc, PeerLost) else PeerLost(rank, _reason(rank, exc)))

    def poll(self, timeout: float):
        """The next message, or ``None`` after ``timeout`` seconds; :class:`PeerLost` on a lost peer."""
        if self.pending:
            return self.pending.pop(0)
        try:
            item = self.queue.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None
        if isinstance(item, PeerLost):
            self.closed.add(item.rank)
            raise item
        return item

    def get(self, timeout: float, waiting_for=()) -> Message:
        """The next message; :class:`PeerLost` on a lost peer or after ``timeout`` seconds of silence.

        ``waiting_for`` names the ranks the caller expects to hear from (for the timeout message).
        """
        msg = self.poll(timeout)
        if msg is None:
            ranks = sorted(waiting_for)
            who = ", ".join(_name(r) for r in ranks) or "no peer"
            raise PeerLost(ranks[0] if len(ranks) == 1 else -1,
                           f"{who} sent nothing for {timeout:g} s (stopped answering or hung); "
                           f"the run was ended instead of waiting")
        return msg

    def put_back(self, msg: Message) -> None:
        """Keep ``msg`` for the next :meth:`get` (a worker set aside while checking for CANCEL)."""
        self.pending.append(msg)


def _name(rank: int) -> str:
    return "server (rank 0)" if rank == 0 else f"worker rank {rank}"


def _reason(rank: int, exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    gloo = re.search(r"(Connection \w+ by peer|Read error|Write error)", text)
    if gloo:
        return f"{_name(rank)} was lost: its connection closed (the process died?) [gloo: {gloo.group(1)}]"
    return f"{_name(rank)} failed while communicating: {text[:200]}"
