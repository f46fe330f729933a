"""Speed options of a fit, as one Lightning callback that `aecls fit` (`--speed.*`), a study
file's `trainer:` key (`channels_last: ...`, `fused_optimizer: ...`) and every programmatic Trainer
(`make_trainer`) reach.

- `channels_last`: conv weights, and so every conv activation, in NHWC order. PyTorch's CPU conv
  kernels (oneDNN) run the small CAE/CNN convs faster that way (BENCHMARKS.md); on CUDA it is
  not measured yet, so `auto` turns it on for the CPU alone.
- `fused_optimizer`: Adam, AdamW and SGD update all parameters in one fused kernel instead of a
  dozen small ops per parameter tensor (the same update rule; the optimiser step is a visible
  share of these small nets' step). RMSprop has no fused form and ignores it.
- bf16 is Lightning's own `precision: bf16-mixed` (CPU and CUDA autocast), not an option here.

Why a callback on the ground floor (beside training.py, not in modules/): the options change how
the work is laid out, not what is computed, so they stay out of the modules' hyper-parameters (a
checkpoint trained either way loads into the other) and out of the study fingerprint (a continued
study may change them); and `make_trainer` adds them to every fit, test and sweep, which it
could not import from above.
"""

from __future__ import annotations

import os
import time
from typing import Any

import lightning as L
import torch

from aecls.core.errors import AeclsError

SWITCH_CHOICES = ("auto", "true", "false")
# The study file's `trainer:` keys that are Speed options, not Trainer arguments.
SPEED_KEYS = ("channels_last", "fused_optimizer")


def parse_switch(name: str, value: Any) -> str:
    """auto / true / false (YAML booleans too); anything else is a user error naming `name`."""
    text = str(value).lower()
    if text not in SWITCH_CHOICES:
        raise AeclsError(f"{name} must be one of {list(SWITCH_CHOICES)}, got {value!r}")
    return text


class Speed(L.Callback):
    """Speed options of a fit (see the module docstring).

    Args:
        channels_last: "auto" (on for the CPU, where it is measured faster), "true" or "false".
        fused_optimizer: "auto" (on wherever torch has a fused kernel), "true" or "false".
    """

    def __init__(self, channels_last: str | bool = "auto", fused_optimizer: str | bool = "auto") -> None:
        self.channels_last = parse_switch("channels_last", channels_last)
        self.fused_optimizer = parse_switch("fused_optimizer", fused_optimizer)

    def channels_last_on(self, device: torch.device) -> bool:
        return device.type == "cpu" if self.channels_last == "auto" else self.channels_last == "true"

    def fused_on(self) -> bool:
        return self.fused_optimizer != "false"

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Before the strategy moves the module and the optimiser is built: `.to(device)` keeps the
        # memory format, and the optimiser's state is created in the parameters' own layout.
        if self.channels_last_on(trainer.strategy.root_device):
            pl_module.to(memory_format=torch.channels_last)


def speed_of(trainer: L.Trainer | None) -> Speed:
    """The trainer's Speed callback, or the defaults for a Trainer built without one."""
    for cb in getattr(trainer, "callbacks", None) or []:
        if isinstance(cb, Speed):
            return cb
    return Speed()


# The environment variables the BLAS / OpenMP pools read when their library loads.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_threads(n: int) -> None:
    """This process computes on `n` threads: torch's, and the BLAS/OpenMP pools that numpy,
    SciPy and scikit-learn use (the transfer sweep's logistic regressions, the probe).

    Why both: processes that share the cores must split them, and torch.set_num_threads reaches
    torch alone; an unlimited OpenBLAS beside another process spins against it and ran a
    logistic regression many times slower. Pools already loaded are limited through threadpoolctl
    (scikit-learn's own dependency), those loaded later through their environment variables."""
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    os.environ.update({v: str(n) for v in THREAD_VARS})
    threadpool_limits(n)


def sync(device: str | object) -> None:
    """Wait for queued CUDA work, so a timer reads the work done, not the work queued."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


class EpochTimes(L.Callback):
    """Each training epoch's seconds, from its first to its last hook (not the fit's set-up), in
    `seconds`; with `report`, printed when fit ends (rank 0) as `epoch seconds: [...]`:
    `aecls fit ... --trainer.callbacks+=aecls.modules.speed.EpochTimes`. The benchmarks time with it too."""

    def __init__(self, report: bool = True) -> None:
        self.report = report
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        sync(pl_module.device)
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        sync(pl_module.device)
        self.seconds.append(round(time.perf_counter() - self.start, 3))

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.report and trainer.is_global_zero:
            print(f"epoch seconds: {self.seconds}")
