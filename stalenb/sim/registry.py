"""Named, pluggable parts of the simulator: the server rules and the late-gradient protocols.

The built-in rules (:data:`stalenb.sim.rules.RULES`) and protocols
(:data:`stalenb.sim.schedule.PROTOCOLS`) are registered through the same call a user makes for an
own one; :class:`stalenb.Config`, both paths of the engine, ``run_all`` and the command line look
names up here when they run, so an entry registered after import is accepted everywhere.

**Cache.** A cached run depends on the code that made it. The built-ins live in ``stalenb/sim/``,
whose source hash is in every cache key; a user's entry is keyed on its own source
(:func:`Registry.source`: ``inspect.getsource`` of its class or function). When the source cannot
be read (an entry defined in an interactive session without a file), its runs are not cached, and
:func:`stalenb.sim.engine.run` says so in one warning.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping


class Registry(Mapping):
    """Name → entry, in registration order; iterates over the names (so ``"x" in registry`` and
    ``argparse``'s ``choices=registry`` work) and prints as the tuple of names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict = {}
        self._builtin: set = set()
        self._sources: dict = {}

    def register(self, name: str, entry, *, replace: bool = False, builtin: bool = False, source: str | None = None):
        """Add ``entry`` under ``name`` (a non-empty ``str``); an existing name needs ``replace=True``.
        ``source`` pins what its cached runs are keyed on (a worker process receiving an entry by
        value gets the source its parent read). Returns ``entry``."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if name in self._items and not replace:
            raise ValueError(f"{self.kind} {name!r} is already registered; pass replace=True to replace it")
        if name in self._builtin and not builtin:
            raise ValueError(f"{self.kind} {name!r} is built in and cannot be replaced; register another name")
        self._items[name] = entry
        self._sources.pop(name, None)
        if source is not None:
            self._sources[name] = source
        if builtin:
            self._builtin.add(name)
        return entry

    def unregister(self, name: str) -> None:
        """Remove a user's entry (built-ins stay)."""
        if name in self._builtin:
            raise ValueError(f"{self.kind} {name!r} is built in and cannot be removed")
        self._items.pop(name, None)
        self._sources.pop(name, None)

    def builtin(self, name: str) -> bool:
        return name in self._builtin

    def source(self, name: str) -> str | None:
        """The source of a user's entry (what its cached runs are keyed on); ``""`` for a built-in
        (keyed by the simulator's own hash); ``None`` when the source cannot be read."""
        if name in self._builtin:
            return ""
        if name in self._sources:
            return self._sources[name]
        entry = self._items[name]
        try:
            if inspect.isfunction(entry) or inspect.isclass(entry):
                return inspect.getsource(entry)
            parts = [inspect.getsource(type(entry))]
            for attr, value in sorted(vars(entry).items()):  # an instance: its code and its settings
                parts.append(inspect.getsource(value) if inspect.isfunction(value) else f"{attr}={value!r}")
            return "\n".join(parts)
        except (OSError, TypeError):
            return None

    def __getitem__(self, name: str):
        return self._items[name]

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return repr(tuple(self._items))
