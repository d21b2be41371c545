"""What a run records: the tidy evaluation frame and the per-gradient staleness record.

History (one row per evaluation point; docs/design.md §S3 "Output"):

| column | meaning |
| --- | --- |
| ``step`` | server updates applied so far |
| ``sim_time`` | simulated seconds at that update (timing model) |
| ``samples`` | training samples behind the gradients applied so far |
| ``gradients`` / ``dropped`` | gradients applied / computed and discarded, cumulative |
| ``train_loss`` | loss on a fixed training subset (``eval_size`` samples) at the current model |
| ``batch_loss`` | mean mini-batch loss of the gradients applied since the previous row |
| ``test_loss``, ``test_acc`` | on the first ``eval_size`` test samples; accuracy a fraction in [0, 1] |
| ``val_loss``, ``val_acc`` | on the validation split held out of the training digits (``Config.validation``); NaN when none |
| (any of the five above) | NaN when its split is not in ``Config.eval_splits`` |
| ``staleness_mean``, ``staleness_max`` | over the gradients applied since the previous row |
| ``bytes_sent`` | bytes pushed by workers, cumulative (dense 4·d, sparse 8 per kept entry) |
| ``diverged`` | True on the last row of a run stopped for divergence |

Updates (one row per gradient): ``step``, ``worker``, ``version`` (model version read),
``staleness`` (= step − version), ``weight`` (lag weight), ``time`` (when it was ready),
``applied`` (False for a dropped gradient).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

HISTORY_COLUMNS = (  # what a reader looks for first comes first: a narrow print(history) keeps it in view
    "step", "sim_time", "test_acc", "train_loss", "test_loss", "val_acc", "val_loss", "batch_loss",
    "samples", "gradients", "dropped", "staleness_mean", "staleness_max", "bytes_sent", "diverged",
)
UPDATE_COLUMNS = ("step", "worker", "version", "staleness", "weight", "time", "applied")


class Recorder:
    """Accumulates counters between evaluations and builds the two frames."""

    def __init__(self, push_batch: int, push_bytes: int):
        self.push_batch, self.push_bytes = push_batch, push_bytes
        self.rows: list[dict] = []
        self.updates = {col: [] for col in UPDATE_COLUMNS}
        self.samples = self.gradients = self.dropped = self.bytes = 0
        self._lags: list[int] = []
        self._losses: list[float] = []

    def update(self, upd, lags, weights, losses) -> None:
        """Record one server update (its pushes, lags, weights and mini-batch losses)."""
        for p, lag, w in zip(upd.pushes, lags, weights):
            self._row(upd.step, p, lag, w, True)
        for p in upd.dropped:
            self._row(upd.step, p, upd.step - p.version, 0.0, False)
        n = len(upd.pushes)
        self.samples += n * self.push_batch
        self.gradients += n
        self.dropped += len(upd.dropped)
        self.bytes += n * self.push_bytes
        self._lags.extend(lags)
        self._losses.extend(losses)

    def _row(self, step, push, lag, weight, applied):
        u = self.updates
        u["step"].append(step)
        u["worker"].append(push.worker)
        u["version"].append(push.version)
        u["staleness"].append(lag)
        u["weight"].append(weight)
        u["time"].append(push.time)
        u["applied"].append(applied)

    def evaluate(self, step: int, sim_time: float, metrics: dict, diverged: bool = False) -> None:
        """Append one history row and reset the window counters."""
        lags, losses = self._lags, self._losses
        self.rows.append(
            {
                "step": step,
                "sim_time": sim_time,
                "samples": self.samples,
                "gradients": self.gradients,
                "dropped": self.dropped,
                "train_loss": metrics["train_loss"],
                "batch_loss": float(np.mean(losses)) if losses else math.nan,
                "test_loss": metrics["test_loss"],
                "test_acc": metrics["test_acc"],
                "val_loss": metrics.get("val_loss", math.nan),
                "val_acc": metrics.get("val_acc", math.nan),
                "staleness_mean": float(np.mean(lags)) if lags else 0.0,
                "staleness_max": int(max(lags)) if lags else 0,
                "bytes_sent": self.bytes,
                "diverged": diverged,
            }
        )
        self._lags, self._losses = [], []

    def history(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=list(HISTORY_COLUMNS)).astype(
            {"step": "int64", "samples": "int64", "gradients": "int64", "dropped": "int64",
             "staleness_max": "int64", "bytes_sent": "int64", "diverged": "bool"}
        )

    def update_frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.updates, columns=list(UPDATE_COLUMNS))
        return df.astype({"step": "int64", "worker": "int64", "version": "int64", "staleness": "int64",
                          "weight": "float64", "time": "float64", "applied": "bool"})
