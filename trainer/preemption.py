"""Preemption: a signal only sets a flag; the training loop acts on it at the next step boundary.

SIGUSR1, SIGTERM and SIGUSR2 are caught (some stacks prefer SIGUSR2 because NCCL may use SIGUSR1). The loop makes
all ranks agree on the flag (one all-reduce per step), every rank takes part in the checkpoint, and the CLI exits
with :data:`EXIT_PREEMPTED` = 75 (``EX_TEMPFAIL``: "stopped for preemption, checkpoint saved, rerun to resume").
"""
from __future__ import annotations

import signal
from typing import Optional

EXIT_PREEMPTED = 75
SIGNALS = (signal.SIGUSR1, signal.SIGTERM, signal.SIGUSR2)


class PreemptionFlag:
    def __init__(self) -> None:
        self.signum: Optional[int] = None

    def install(self, signals=SIGNALS) -> "PreemptionFlag":
        for s in signals:
            signal.signal(s, self._handler)
        return self

    def _handler(self, signum, frame) -> None:
        self.signum = signum

    def is_set(self) -> bool:
        return self.signum is not None

    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""
