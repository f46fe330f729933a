"""Re-run a study's best trial with several seeds for its test score, and export its encoder for
the transfer stage: artifacts/<study>/best_encoder.pt + best.json."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.trial import FrozenTrial

from aecls.core.errors import check
from aecls.core.paths import ARTIFACTS, BEST_FILE, ENCODER_FILE, LOG_DIR
from aecls.evaluation.stats import sample_sd, spread
from aecls.hpo.objective import checkpoint_callback, trial_config
from aecls.hpo.record import BestRecord
from aecls.hpo.rules import RULES
from aecls.hpo.sampler import rerun_seeds
from aecls.hpo.space import model_config
from aecls.hpo.spec import StudySpec
from aecls.modules.encoders import export_encoder
from aecls.training.probe import PROBE_METRIC, LatentProbe
from aecls.training.train import build_module, train
from aecls.training.trainer import quiet_lightning, tensorboard_logger


def select_trial(spec: StudySpec, study: optuna.Study, rule: str | None = None) -> tuple[FrozenTrial, str]:
    """(the trial `rule` picks, the rule); the default rule is the objective (`knee` for multi)."""
    multi = len(spec.metrics) > 1
    rule = rule or ("knee" if multi else spec.objective)
    allowed = [r for r in RULES if r != "loss"] if multi else [spec.objective]
    check(rule in allowed, f"selection rule {rule}: study {spec.name} has objective {spec.objective!r}, "
          f"so the rule can be {' or '.join(allowed)}", setting="select")
    front = study.best_trials
    check(bool(front), f"study {spec.name} has no completed trial yet; run it first")
    if not multi:
        return study.best_trial, rule
    # lower is better for both: the first objective (the family's score) signed by its direction
    first = np.array([t.values[0] for t in front]) * (-1 if spec.directions[0] == "maximize" else 1)
    acc = np.array([t.values[1] for t in front])
    if rule == "recon":
        score = first
    elif rule == "probe":
        score = -acc
    else:  # knee: distance to (best score, highest accuracy) after scaling each to [0, 1]
        score = np.hypot(_scaled(first), _scaled(-acc))
    return front[int(np.argmin(score))], rule


def _scaled(v: np.ndarray) -> np.ndarray:
    span = v.max() - v.min()
    return (v - v.min()) / span if span > 0 else np.zeros_like(v)


def _fit_and_test(spec: StudySpec, params: dict[str, Any], model: dict[str, Any], seed: int, monitor: str,
                  data_dir: str | None, log_dir: str) -> dict[str, Any]:
    """One seeded re-run of a config (`model`: its model config), full epochs, tested at its best
    checkpoint."""
    version = f"best_seed{seed}"
    ckpt = checkpoint_callback(spec, Path(log_dir) / spec.name / version / "checkpoints", monitor)
    cfg = trial_config(spec, params, seed, data_dir, checkpoint=ckpt, test="best",
                            callbacks=[LatentProbe()] if spec.uses_probe else [],
                            logger=tensorboard_logger(log_dir, spec.name, version))
    cfg.model = model
    run = train(cfg)
    return {"seed": seed, "threads": torch.get_num_threads(), "val_score": run.best_score,
            "checkpoint": run.best_path, "test": run.test, "module": run.module}


def rerun_best(spec: StudySpec, study: optuna.Study, seeds: int = 3, data_dir: str | None = None,
               log_dir: str = LOG_DIR, out_root: str = ARTIFACTS,
               select: str | None = None, test_settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train the selected trial's config once per seed (the trial's own seed first, full epochs),
    test each best checkpoint, export the encoder of the seed best on the rule's validation
    metric. `test_settings`: the model's test-only arguments (a VAE's nll_samples), recorded.
    Returns what is written to best.json."""
    test_settings = dict(test_settings or {})
    spec.family.module.check_test_settings(test_settings)
    trial, rule = select_trial(spec, study, select)
    params = spec.suggest(optuna.trial.FixedTrial(trial.params))  # fixed values of the space too
    model = model_config(spec, params)
    model["init_args"].update(test_settings)  # test-only: each fit is the trial's
    cost = build_module(model).test_cost()
    if cost is not None:  # said once, before the first of the seeds' tests
        print(f"aecls: {cost}; each of {seeds} seed(s) is tested", flush=True)
    monitor = PROBE_METRIC if rule == "probe" else spec.metrics[0]
    sign = -1 if spec.direction(monitor) == "maximize" else 1  # lower `sign * score` is better
    quiet_lightning()
    # The trial's own seed first, with the trial's CPU thread count (a study worker gets a share
    # of the cores; float sums split over other thread counts round differently): on the same
    # machine its run reproduces the trial's score. A trial of a study run before trials were
    # seeded has none.
    own = trial.user_attrs.get("seed")
    seed_list = rerun_seeds(own, seeds) if own is not None else list(range(seeds))
    threads = torch.get_num_threads()
    runs = []
    try:
        for seed in seed_list:
            torch.set_num_threads(trial.user_attrs.get("threads", threads) if seed == own else threads)
            runs.append(_fit_and_test(spec, params, model, seed, monitor, data_dir, log_dir))
    finally:
        torch.set_num_threads(threads)
    chosen = min(runs, key=lambda r: sign * r["val_score"])
    out = Path(out_root) / spec.name
    out.mkdir(parents=True, exist_ok=True)
    net = chosen["module"].net_cfg
    export_encoder(out / ENCODER_FILE, chosen["module"].encoder, net, spec.model)
    metrics = sorted(runs[0]["test"])
    trial_values = dict(zip(spec.metrics, trial.values, strict=True))
    reproduced = None
    if own is not None and monitor == spec.metrics[0]:  # the metric the trial was checkpointed on
        reproduced = {"metric": monitor, "trial": trial_values[monitor], "rerun": runs[0]["val_score"],
                      "identical": trial_values[monitor] == runs[0]["val_score"]}
    record = BestRecord(
        study=spec.name, model=spec.model, trial=trial.number, params=params,
        objective=spec.objective, select=rule, rule=RULES[rule],
        trial_values=trial_values, monitor=monitor, trial_seed=own, reproduced=reproduced,
        loss_varies_with=list(spec.searched_loss_keys), test_settings=dict(test_settings),
        net=asdict(net), epochs=spec.epochs, seeds=seed_list,
        test={m: {"mean": float(np.mean([r["test"][m] for r in runs])),
                  "sd": sample_sd([r["test"][m] for r in runs])} for m in metrics},
        runs=[{k: v for k, v in r.items() if k != "module"} for r in runs],
        encoder={"path": str(out / ENCODER_FILE), "seed": chosen["seed"], "checkpoint": chosen["checkpoint"]},
    )
    record.write(out / BEST_FILE)
    return record


def format_best(record: BestRecord) -> str:
    """What `study best` prints: the trial, whether its seed reproduced it, the test metrics."""
    lines = [f"trial {record.trial} of {record.study} (--select {record.select}: {record.rule}), "
             f"re-trained with {len(record.seeds)} seeds, its own ({record.trial_seed}) first:",
             json.dumps(record.params)]
    rep = record.reproduced
    if rep is not None:
        lines.append(f"  {rep['metric']}: trial {rep['trial']:.6g}, re-run with its seed {rep['rerun']:.6g} "
                     f"({'identical' if rep['identical'] else 'differs: see RESULTS.md, Reproducibility'})")
    n = len(record.seeds)
    lines += [f"  {name:12s} {spread(s['mean'], s['sd'], n)}{note}" for name, s, note in record.test_rows()]
    lines.append(f"encoder: {record.encoder['path']} (seed {record.encoder['seed']}); "
                 f"record: {Path(record.encoder['path']).with_name(BEST_FILE)}")
    return "\n".join(lines)
