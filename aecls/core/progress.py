"""Progress on long work: a bar in a terminal, one line per step anywhere else.

Why not tqdm alone: outside a terminal (a pipeline's log file, a job's output) a bar still redraws
itself with carriage returns several times a second, so a log holds thousands of bar frames where
a reader wants one line per trial, run or epoch."""

from __future__ import annotations

import sys
from typing import Any, TextIO

import lightning as L
from lightning.pytorch.callbacks import Callback
from tqdm import tqdm


def in_terminal(stream: TextIO | None = None) -> bool:
    """Does `stream` (default: stderr, where bars go) write to a terminal?"""
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


class LineProgress:
    """The part of tqdm's interface a study's bar uses (`n` set, `refresh`, `close`), as one line
    each time the count moves: "study quickstart: 3/6 trials"."""

    def __init__(self, total: int, desc: str, unit: str) -> None:
        self.total, self.desc, self.unit, self.n = total, desc, unit, 0
        self._said = 0

    def refresh(self) -> None:
        if self.n != self._said:
            print(f"{self.desc}: {self.n}/{self.total} {self.unit}s", file=sys.stderr, flush=True)
            self._said = self.n

    def close(self) -> None:
        pass


def progress(total: int, desc: str, unit: str, show: bool = True) -> tqdm | LineProgress:
    """A tqdm bar in a terminal, LineProgress elsewhere, a silent bar when not `show`."""
    if show and not in_terminal():
        return LineProgress(total, desc, unit)
    return tqdm(total=total, desc=desc, unit=unit, disable=not show)


class EpochLines(Callback):
    """A fit's progress outside a terminal, where Lightning's bar is off: one line per validation
    epoch with its val/* means."""

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # (on_validation_end: the module's epoch means are logged by then)
        if trainer.sanity_checking or not trainer.is_global_zero or trainer.state.fn != "fit":
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        shown = ", ".join(f"{k} {v:.5g}" for k, v in sorted(metrics.items()))
        of = "" if trainer.max_epochs in (None, -1) else f" of {trainer.max_epochs}"
        print(f"epoch {trainer.current_epoch + 1}{of}: {shown}", flush=True)  # counted from 1


def bar_here(wanted: Any) -> bool:
    """Lightning's bar where it was asked for (None: the default, on) and stdout, where it draws,
    is a terminal."""
    return (wanted is None or bool(wanted)) and in_terminal(sys.stdout)
