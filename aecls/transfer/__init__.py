"""The transfer stage: label-efficiency sweeps of pretrained encoders and their comparison."""

from aecls.transfer.compare import compare_sweeps, read_sweep
from aecls.transfer.sweep import METHODS, SweepConfig, markdown_table, run_sweep, summarise, write_outputs

__all__ = ["METHODS", "SweepConfig", "compare_sweeps", "markdown_table", "read_sweep", "run_sweep",
           "summarise", "write_outputs"]
