"""The simulator: everything a simulated run's numbers depend on (docs/design.md §S3).

``config`` (the frozen :class:`Config` and its validation) · ``staleness`` (synthetic delays) ·
``timing`` (worker speeds, the shared link) · ``schedule`` (the protocols as event schedules) ·
``compress`` (top-k / random-k, error feedback) · ``rules`` and ``server`` (update rules, the
parameter server) · ``gradients``, ``models``, ``data``, ``objectives`` (what is optimised) ·
``engine`` and ``history`` (the simulated driver and its records).

The results cache (:mod:`stalenb.cache`) keys every run on a hash of this folder's sources: an
edit here recomputes cached runs, an edit anywhere else keeps them.
"""
