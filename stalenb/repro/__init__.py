"""The machinery behind the make targets: ``reproduce`` (``make reproduce``: every notebook with
papermill), ``report`` (``make report``: the static HTML site) and ``bench`` (``make bench``: speed
ratios against plain PyTorch loops). Run them as ``python -m stalenb.repro.<name>``."""
