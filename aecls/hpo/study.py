"""Opening a study: its storage, its per-trial seeded sampler and pruner, and the check that a
continued study was created from the same study file (its fingerprint)."""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
from optuna.trial import TrialState

from aecls.core.errors import AeclsError
from aecls.core.paths import DEFAULT_STORAGE
from aecls.hpo.search import pruner_for, sampler_for
from aecls.hpo.spec import StudySpec
from aecls.hpo.storage import make_storage, retry_races, safe_url

FILE_ATTR = "study_file"  # the study file a study was last run from (a name finds it again)
LIVE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
DONE = (TrialState.COMPLETE, TrialState.PRUNED)


def open_study(spec: StudySpec, storage: str = DEFAULT_STORAGE, allow_changes: bool = False,
               create: bool = True, **storage_kw) -> optuna.Study:
    """The study named in `spec` on `storage`; a second call continues it (load_if_exists).

    The sampler is TPE (`sampler_for`), for the two objectives of `multi` too
    (multi-objective TPE); NSGA-II's generations (population 50 by default) need more trials
    than a 20-trial CPU study has. A continued study
    must have been created from the same study file (space, epochs, objective, ...) unless
    `allow_changes`. With `create=False` (`study best`, `study plots`: commands that only
    read) neither the storage nor the study is created, and nothing is written to it.
    """
    # set_metric_names and heartbeats are "experimental" in Optuna: warned about in every worker
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    sampler = sampler_for(spec.seed, spec.sampler_args)
    backend = make_storage(storage, create=create, **storage_kw)
    if create:  # hosts starting together race to create it: the losers load it (retry_races)
        study = retry_races(lambda: optuna.create_study(
            study_name=spec.name, storage=backend, directions=spec.directions, sampler=sampler,
            pruner=pruner_for(spec.pruner, spec.pruner_args, spec.epochs), load_if_exists=True))
    else:
        try:
            study = optuna.load_study(study_name=spec.name, storage=backend, sampler=sampler,
                                      pruner=pruner_for(spec.pruner, spec.pruner_args, spec.epochs))
        except KeyError as e:
            raise AeclsError(f"no study {spec.name} on {safe_url(storage)}; `aecls study run` "
                             "creates it") from e
        except Exception as e:  # a server storage without Optuna's tables (sqlalchemy's errors)
            raise AeclsError(f"no study {spec.name} on {safe_url(storage)} ({type(e).__name__})") from e
    have = [d.name.lower() for d in study.directions]
    if have != spec.directions:
        raise AeclsError(f"study {spec.name} on {safe_url(storage)} was created to {have} (objective "
                         "changed?); give the study file another name or use another storage")
    named = study.metric_names
    if named is not None and named != list(spec.metrics) and study.get_trials(deepcopy=False):
        # the same objective name may compare another metric than when the study was created
        # (aecls's `recon` compared val/loss before each family declared its score): never mix them
        raise AeclsError(f"study {spec.name} on {safe_url(storage)} ranks its trials by {named}, and "
                         f"this study file compares {list(spec.metrics)}; give the study file "
                         "another name or use another storage")
    now, before = spec.fingerprint(), study.user_attrs.get("spec")
    if before is not None and before != now and not allow_changes:
        changed = [k for k in {**before, **now} if before.get(k) != now.get(k)]
        raise AeclsError(f"study {spec.name} on {safe_url(storage)} was created from a different study "
                         f"file ({', '.join(changed)} changed); allow the changes to continue it "
                         "anyway, or give the study another name", setting="allow_changes")
    if not create:
        return study
    if before != now:
        retry_races(lambda: study.set_user_attr("spec", now))
    if spec.file is not None and study.user_attrs.get(FILE_ATTR) != spec.file:
        retry_races(lambda: study.set_user_attr(FILE_ATTR, spec.file))
    if study.metric_names != list(spec.metrics):
        # optuna-dashboard shows names, not "Objective 0"
        retry_races(lambda: study.set_metric_names(list(spec.metrics)))
    return study


def recorded_study_file(name: str, storage: str) -> str | None:
    """The study file that study `name` on `storage` was last run from, if it recorded one and it
    is still there (read only: nothing is created)."""
    try:
        backend = make_storage(storage, create=False)
        attrs = optuna.load_study(study_name=name, storage=backend).user_attrs
    except Exception:  # no storage, no such study, no tables: nothing recorded
        return None
    path = attrs.get(FILE_ATTR)
    return path if path and Path(path).is_file() else None
