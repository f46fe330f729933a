"""Optuna studies over the autoencoders: study files (space.py) -> trials (objective.py, run.py on
storage.py's storages) -> the best config re-run (best.py) and summarised (summary.py). Import from
the modules: this package re-exports nothing, so the command line can read rules.py without
loading torch."""
