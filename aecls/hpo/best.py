"""Re-run a study's best trial with several seeds for its test score, and export its encoder for
the transfer stage: artifacts/<study>/best_encoder.pt + best.json."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import optuna
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger

from aecls.data import FashionMNISTDataModule
from aecls.encoders import ENCODER_FILE, export_encoder
from aecls.errors import AeclsError
from aecls.hpo.space import StudySpec
from aecls.training import make_trainer, quiet_lightning

INFO_FILE = "best.json"


def best_params(spec: StudySpec, study: optuna.Study) -> tuple[int, dict[str, Any]]:
    """(trial number, every parameter of the best trial, fixed values of the space included)."""
    try:
        best = study.best_trial
    except ValueError as e:
        raise AeclsError(f"study {spec.name} has no completed trial yet; run it first") from e
    return best.number, spec.suggest(optuna.trial.FixedTrial(best.params))


def rerun_best(spec: StudySpec, study: optuna.Study, seeds: int = 3, data_dir: str | None = None,
               log_dir: str = "lightning_logs", out_root: str = "artifacts") -> dict[str, Any]:
    """Train the best config once per seed (full epochs), test each best checkpoint, export the
    encoder of the seed with the lowest val loss. Returns what is written to best.json."""
    number, params = best_params(spec, study)
    quiet_lightning()
    runs = []
    for seed in range(seeds):
        L.seed_everything(seed, verbose=False)
        module = spec.build_module(params)
        dm = FashionMNISTDataModule(data_dir=data_dir, **spec.data)
        ckpt = ModelCheckpoint(dirpath=Path(log_dir) / spec.name / f"best_seed{seed}" / "checkpoints",
                               filename="best", monitor="val/loss")
        trainer = make_trainer(spec.epochs, checkpointing=True, callbacks=[ckpt],
                               logger=TensorBoardLogger(log_dir, name=spec.name, version=f"best_seed{seed}"))
        trainer.fit(module, datamodule=dm)
        test = trainer.test(module, datamodule=dm, ckpt_path="best", verbose=False, weights_only=True)[0]
        runs.append({"seed": seed, "val_loss": float(ckpt.best_model_score),
                     "checkpoint": ckpt.best_model_path, "test": test, "module": module})
    chosen = min(runs, key=lambda r: r["val_loss"])
    out = Path(out_root) / spec.name
    out.mkdir(parents=True, exist_ok=True)
    net = chosen["module"].net_cfg
    export_encoder(out / ENCODER_FILE, chosen["module"].encoder, net, spec.model)
    metrics = sorted(runs[0]["test"])
    info = {
        "study": spec.name, "model": spec.model, "trial": number, "params": params,
        "net": asdict(net), "epochs": spec.epochs, "seeds": seeds,
        "test": {m: {"mean": float(np.mean([r["test"][m] for r in runs])),
                     "std": float(np.std([r["test"][m] for r in runs]))} for m in metrics},
        "runs": [{k: v for k, v in r.items() if k != "module"} for r in runs],
        "encoder": {"path": str(out / ENCODER_FILE), "seed": chosen["seed"],
                    "checkpoint": chosen["checkpoint"]},
    }
    (out / INFO_FILE).write_text(json.dumps(info, indent=2))
    return info
