"""Optuna studies over the model families: a study file as data (spec.py, no torch) and its checks
(space.py) -> the sampler and pruner (search.py) -> trials (objective.py, run.py on storage.py's
storages, workers.py) -> the best config re-run (best.py, its record: record.py) and summarised
(summary.py). Import from the modules: this package re-exports nothing, so the command line can
read rules.py, spec.py and record.py without loading torch."""
