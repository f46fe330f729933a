"""Optuna studies over the autoencoders: study files -> trials -> best config."""

from aecls.hpo.run import DEFAULT_STORAGE, open_study, run_study
from aecls.hpo.space import StudySpec, load_study

__all__ = ["DEFAULT_STORAGE", "StudySpec", "load_study", "open_study", "run_study"]
