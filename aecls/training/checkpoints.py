"""Load aecls checkpoints safely (weights_only=True) and rebuild their module and DataModule."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from aecls.core.errors import AeclsError
from aecls.data import FashionMNISTDataModule
from aecls.modules import BaseModule
from aecls.modules.encoders import read_checkpoint
from aecls.modules.registry import checkpoint_family, module_classes


def init_args(cls: type, hparams: dict[str, Any]) -> dict[str, Any]:
    """The saved hyper-parameters that `cls.__init__` takes (LightningCLI adds bookkeeping keys)."""
    params = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in hparams.items() if k in params}


def load_module(path: str | Path,
                test_settings: dict[str, Any] | None = None) -> tuple[BaseModule, dict[str, Any]]:
    """(module with the checkpoint's weights, in eval mode; the raw checkpoint dict), with
    `test_settings` (the module's `test_settings` only) over the saved ones."""
    ckpt = read_checkpoint(path)
    name, classes = ckpt.get("aecls_model"), module_classes()
    family = checkpoint_family(ckpt)  # the family it records (older checkpoints: by class)
    if family is None:
        raise AeclsError(f"{path} was not written by an aecls module (model {name!r}); "
                         f"expected one of {sorted(classes)}")
    try:
        cls = family.module
        cls.check_test_settings(test_settings or {})
        module = cls(**{**init_args(cls, ckpt.get("hyper_parameters", {})), **cls.reload_overrides,
                        **(test_settings or {})})
        module.load_state_dict(ckpt["state_dict"])
        module.family_name = family.name
    except (TypeError, KeyError, RuntimeError) as e:
        raise AeclsError(f"{path}: checkpoint does not match {name} ({e})") from e
    return module.eval(), ckpt


def load_datamodule(ckpt: dict[str, Any], **overrides: Any) -> FashionMNISTDataModule:
    """The DataModule the checkpoint was trained with (same split and seed), with `overrides`."""
    hparams = init_args(FashionMNISTDataModule, ckpt.get("datamodule_hyper_parameters", {}))
    hparams.update({k: v for k, v in overrides.items() if v is not None})
    return FashionMNISTDataModule(**hparams)
