"""The transfer stage: label-efficiency sweeps of pretrained encoders (sweep.py, its settings in
config.py) and their comparison (compare.py, plots.py). Import from the modules: this package
re-exports nothing, so the command line can read config.py without loading torch."""
