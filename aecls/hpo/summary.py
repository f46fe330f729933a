"""What a study did: pruning savings, best params (or the Pareto front), and PNG plots
(optuna.visualization.matplotlib)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from aecls.core.paths import STUDY_FILE
from aecls.hpo.recovery import requeued
from aecls.hpo.spec import StudySpec


def summary(spec: StudySpec, study: optuna.Study) -> dict[str, Any]:
    """Counts, the best trial (or the Pareto front), and epochs run vs. what the same trials would
    have run unpruned."""
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    run = sum(t.user_attrs.get("epochs_run", 0) for t in finished)
    full = spec.epochs * len(finished)
    complete = [t for t in finished if t.state == TrialState.COMPLETE]
    trials = study.get_trials(deepcopy=False)
    failed = {t.number for t in trials if t.state == TrialState.FAIL}
    out: dict[str, Any] = {
        "objective": spec.objective, "metrics": list(spec.metrics),
        "complete": len(complete), "pruned": len(finished) - len(complete),
        "failed": len(failed), "requeued": len(failed & requeued(trials)),
        "epochs_run": run, "epochs_unpruned": full,
        "pruning_saved": 1 - run / full if full else 0.0,
        "seconds": round(sum(t.user_attrs.get("seconds", 0.0) for t in finished), 1),
    }
    if complete and len(spec.metrics) > 1:
        out["pareto"] = [{"trial": t.number, "values": t.values, "params": t.params}
                         for t in sorted(study.best_trials, key=lambda t: t.values[0])]
    elif complete:
        best = study.best_trial
        out.update(best_trial=best.number, best_value=best.value, best_params=best.params)
    return out


def _params(p: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in p.items())


def searched(study: optuna.Study) -> list[str]:
    """The parameters the study's complete trials drew (fixed space values are not parameters)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted({k for t in complete for k in t.params})


def format_summary(s: dict[str, Any]) -> str:
    requeued = s.get("requeued", 0)
    failed = f"{s['failed']} failed" + (f" ({requeued} of them re-queued)" if requeued else "")
    lines = [f"trials: {s['complete']} complete, {s['pruned']} pruned, {failed}; "
             f"{s['seconds']} s of training",
             f"epochs run {s['epochs_run']} of {s['epochs_unpruned']} unpruned "
             f"({100 * s['pruning_saved']:.0f}% saved by pruning)"]
    if "best_trial" in s:
        lines.append(f"best trial {s['best_trial']}: {s['metrics'][0]} {s['best_value']:.5f}  "
                     f"({_params(s['best_params'])})")
    for p in s.get("pareto", []):
        values = ", ".join(f"{m} {v:.5f}" for m, v in zip(s["metrics"], p["values"], strict=True))
        lines.append(f"Pareto trial {p['trial']}: {values}  ({_params(p['params'])})")
    if len(s.get("searched", [])) == 1:
        lines.append(f"importances: not plotted, one searched parameter ({s['searched'][0]}) has "
                     "all the importance by construction")
    return "\n".join(lines)


def study_outputs(spec: StudySpec, study: optuna.Study, out_dir: str | Path) -> tuple[str, list[Path]]:
    """The summary `study run` prints, and the PNG plots it saves under `out_dir` (the report's),
    with the summary as data (STUDY_FILE: its best trial is what an encoder export is checked
    against)."""
    s = {**summary(spec, study), "study": spec.name, "searched": searched(study)}
    plots = save_plots(spec, study, out_dir)
    (Path(out_dir) / STUDY_FILE).write_text(json.dumps(s, indent=2, default=str))
    return format_summary(s), plots


def save_plots(spec: StudySpec, study: optuna.Study, out_dir: str | Path) -> list[Path]:
    """Optimisation history, parallel coordinates, importances (per objective for `multi`), the
    Pareto front (`multi`), and the validation curves of the non-pruned trials."""
    from optuna.visualization import matplotlib as ovm

    from aecls.core.plotting import save_figure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    multi = len(spec.metrics) > 1
    plots: dict[str, Any] = {}
    for i, metric in enumerate(spec.metrics):
        suffix = f"_{metric.split('/')[-1]}" if multi else ""  # history_loss, history_probe_acc
        kw = {"target": (lambda t, i=i: t.values[i]) if multi else None, "target_name": metric}
        plots[f"history{suffix}"] = lambda s, kw=kw: ovm.plot_optimization_history(s, **kw)
        if len(complete) >= 2:
            plots[f"parallel_coordinates{suffix}"] = lambda s, kw=kw: ovm.plot_parallel_coordinate(s, **kw)
            # The importance evaluator looks for what gives LOW targets: negate an accuracy.
            sign = -1 if spec.directions[i] == "maximize" else 1
            imp = kw if not multi else {"target": (lambda t, i=i, sign=sign: sign * t.values[i]),
                                        "target_name": metric if sign > 0 else f"-{metric}"}
            if len(searched(study)) >= 2:  # one parameter has all the importance: no plot
                plots[f"importances{suffix}"] = lambda s, imp=imp: ovm.plot_param_importances(s, **imp)
    if multi and complete:
        plots["pareto_front"] = lambda s: ovm.plot_pareto_front(s, target_names=list(spec.metrics))
    written = []
    for name, plot in plots.items():
        ax = plot(study)
        ax.figure.set_size_inches(9, 5)
        written.append(save_figure(ax.figure, out / f"{name}.png"))
    return [*written, *_curves(spec, complete, out)]


def epoch_curve(trial: optuna.trial.FrozenTrial, metric: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of one metric of a trial, its epochs numbered as Lightning's epoch counter,
    Optuna's reported steps and the pruning log number them: from 0."""
    curve = trial.user_attrs.get("history", {}).get(metric)
    if curve is None:  # trials of older runs: the reported (pruning) values, by their step
        steps = sorted(trial.intermediate_values)
        return steps, [trial.intermediate_values[k] for k in steps]
    return list(range(len(curve))), list(curve)


def _curves(spec: StudySpec, complete: list, out: Path) -> list[Path]:
    """One panel per metric: its value per epoch for each non-pruned trial."""
    from matplotlib.ticker import MaxNLocator

    from aecls.core.plotting import plt, save_figure

    fig, axes = plt.subplots(1, len(spec.metrics), figsize=(9 * len(spec.metrics), 5), squeeze=False)
    for ax, metric in zip(axes[0], spec.metrics, strict=True):
        positive = True  # a loss or an MSE spans decades: a log axis, where every value allows it
        for t in complete:
            epochs, curve = epoch_curve(t, metric)
            ax.plot(epochs, curve, marker=".", label=f"trial {t.number}")
            positive = positive and all(v > 0 for v in curve)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        log = positive and complete and spec.direction(metric) == "minimize"
        ax.set(xlabel="epoch (from 0, as Lightning and Optuna count)", ylabel=metric,
               yscale="log" if log else "linear",
               title=f"{spec.name}: {metric} of the non-pruned trials")
        if complete:
            ax.legend(fontsize="small", ncol=2)
    return [save_figure(fig, out / "val_curves.png")]
