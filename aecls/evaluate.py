"""Test metrics of any aecls checkpoint (and its baselines): `aecls test`, and the test printed
after `aecls fit` when `test_after_fit` is set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aecls.checkpoints import load_datamodule, load_module
from aecls.training import make_trainer


def evaluate_checkpoint(ckpt_path: str | Path, data_dir: str | None = None, accelerator: str = "auto",
                        baselines: bool = True, logger: Any = False,
                        test_settings: dict[str, Any] | None = None) -> dict[str, float]:
    """Test metrics of a checkpoint (and, with `baselines`, its reference numbers), printed one
    per line and returned; a classifier's per-class report is written beside its checkpoints.
    With a `logger` (the fit's, after `aecls fit`), the test/* metrics are logged to it too.
    `test_settings`: the module's test-only arguments for this test (a VAE's nll_samples)."""
    module, ckpt = load_module(ckpt_path, test_settings)
    dm = load_datamodule(ckpt, data_dir=data_dir)
    # A bar over the test batches: a VAE's importance-sampled NLL takes minutes on a CPU.
    trainer = make_trainer(1, accelerator=accelerator, logger=logger, progress=True)
    if (cost := module.test_cost()) is not None:
        print(f"aecls: {cost}", flush=True)
    results = trainer.test(module, datamodule=dm, verbose=False)[0]
    if baselines:
        from aecls.baselines import baselines_for

        results.update(baselines_for(module, dm.splits["train"][0].cpu().numpy(),
                                     dm.splits["test"][0].cpu().numpy()))
    print(f"{type(module).__name__} {ckpt_path}")
    for name, value in sorted(results.items()):
        print(f"  {name:32s} {value:.6g}")
    if getattr(module, "test_outputs", None):
        import torch

        from aecls.classification import write_classification_report

        out = Path(ckpt_path).resolve().parent.parent / "test"
        outputs = {k: torch.cat(v).numpy() for k, v in module.test_outputs.items()}
        paths = write_classification_report(outputs["probs"], outputs["targets"], dm.classes, out,
                                            title=f"{module.hparams.mode} classifier: {Path(ckpt_path).name}")
        print(f"  per-class report, confusion matrix, predictions: {', '.join(map(str, paths.values()))}")
    return results
