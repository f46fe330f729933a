"""What a study did: pruning savings, best params, and PNG plots (optuna.visualization.matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from aecls.hpo.space import StudySpec


def summary(spec: StudySpec, study: optuna.Study) -> dict[str, Any]:
    """Counts, the best trial, and epochs run vs. what the same trials would have run unpruned."""
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    run = sum(t.user_attrs.get("epochs_run", 0) for t in finished)
    full = spec.epochs * len(finished)
    complete = [t for t in finished if t.state == TrialState.COMPLETE]
    out: dict[str, Any] = {
        "complete": len(complete), "pruned": len(finished) - len(complete),
        "failed": len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,))),
        "epochs_run": run, "epochs_unpruned": full,
        "pruning_saved": 1 - run / full if full else 0.0,
        "seconds": round(sum(t.user_attrs.get("seconds", 0.0) for t in finished), 1),
    }
    if complete:
        best = study.best_trial
        out.update(best_trial=best.number, best_value=best.value, best_params=best.params)
    return out


def format_summary(s: dict[str, Any]) -> str:
    lines = [f"trials: {s['complete']} complete, {s['pruned']} pruned, {s['failed']} failed; "
             f"{s['seconds']} s of training",
             f"epochs run {s['epochs_run']} of {s['epochs_unpruned']} unpruned "
             f"({100 * s['pruning_saved']:.0f}% saved by pruning)"]
    if "best_trial" in s:
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in s["best_params"].items())
        lines.append(f"best trial {s['best_trial']}: val/loss {s['best_value']:.5f}  ({params})")
    return "\n".join(lines)


def save_plots(study: optuna.Study, out_dir: str | Path) -> list[Path]:
    """Optimisation history, parallel coordinates, importances, val-loss curves (non-pruned)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    plots = {"history": ovm.plot_optimization_history}
    if len(complete) >= 2:
        plots.update(parallel_coordinates=ovm.plot_parallel_coordinate,
                     importances=ovm.plot_param_importances)
    written = []
    for name, plot in plots.items():
        ax = plot(study)
        ax.figure.set_size_inches(9, 5)
        ax.figure.tight_layout()
        ax.figure.savefig(out / f"{name}.png", dpi=100)
        plt.close(ax.figure)
        written.append(out / f"{name}.png")
    fig, ax = plt.subplots(figsize=(9, 5))
    for t in complete:
        steps = sorted(t.intermediate_values)
        ax.plot(steps, [t.intermediate_values[s] for s in steps], marker=".", label=f"trial {t.number}")
    ax.set(xlabel="epoch", ylabel="val/loss", yscale="log",
           title=f"{study.study_name}: validation loss of the non-pruned trials")
    if complete:
        ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    fig.savefig(out / "val_curves.png", dpi=100)
    plt.close(fig)
    return [*written, out / "val_curves.png"]
