"""DDP done right: each rank trains on its own shard, epoch metrics are synced, and a study's DDP
trial (two CPU processes, gloo) is scored and pruned through Optuna's DDP pruning callback."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from optuna.trial import TrialState

from aecls.data import FashionMNISTDataModule
from aecls.data.batches import DeviceBatches
from aecls.hpo.run import open_study, run_study
from aecls.hpo.space import load_study
from aecls.modules import AutoEncoder
from aecls.nets import NetConfig
from aecls.training.trainer import make_trainer
from tests.helpers import SPACE, finished, write_study

DDP_CPU = {"accelerator": "cpu", "devices": 2, "strategy": "ddp_spawn"}


def _images(batches: DeviceBatches) -> list[int]:
    """The image indices a shard yields (images are their own index, so they can be told apart)."""
    return [int(x[i, 0, 0, 0] * 255 + 0.5) + 256 * int(x[i, 0, 0, 1] * 255 + 0.5)
            for x, _ in batches for i in range(len(x))]


@pytest.mark.parametrize(("n", "world", "shuffle"),
                         [(10, 2, True), (11, 2, True), (11, 3, False), (7, 1, True)])
def test_shards_are_disjoint_and_cover_the_epoch(n, world, shuffle):
    idx = torch.arange(n)
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    images[:, 0, 0], images[:, 0, 1] = (idx % 256).to(torch.uint8), (idx // 256).to(torch.uint8)
    labels = torch.zeros(n, dtype=torch.int64)
    for even in (True, False):
        shards = [_images(DeviceBatches(images, labels, 3, shuffle=shuffle, seed=5, rank=r, world_size=world,
                                        even=even)) for r in range(world)]
        seen = [i for s in shards for i in s]
        assert len(seen) == len(set(seen))  # disjoint
        if even:  # training: the same number of images (and steps) on every rank
            assert {len(s) for s in shards} == {n // world} and len(seen) == n - n % world
        else:  # evaluation: every image once
            assert sorted(seen) == list(range(n))
    # one rank of a shuffled epoch is a slice of the single-process order
    if shuffle:
        single = _images(DeviceBatches(images, labels, 3, shuffle=True, seed=5))
        assert _images(DeviceBatches(images, labels, 3, shuffle=True, seed=5, rank=0, world_size=world,
                                     even=True)) == single[0 : (n // world) * world : world]


class RecordImages(Callback):
    """Writes the hash of every training image each rank sees, per epoch, to DIR/rank<r>.json."""

    def __init__(self, out: str) -> None:
        self.out, self.seen = out, {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        hashes = [hashlib.md5(x.cpu().numpy().tobytes()).hexdigest() for x in batch[0]]
        self.seen.setdefault(trainer.current_epoch, []).extend(hashes)

    def on_train_end(self, trainer, pl_module) -> None:
        Path(self.out, f"rank{trainer.global_rank}.json").write_text(json.dumps(self.seen))


def _module() -> AutoEncoder:
    # no BatchNorm: its running statistics are per rank, so a rank-0 model would not be the synced one
    return AutoEncoder(net=NetConfig(latent_dim=4, n_channels=2, hidden=16, batch_norm=False))


@pytest.mark.slow
def test_two_process_ddp_fit_trains_on_disjoint_shards_and_syncs_metrics(tiny_data, tmp_path):
    dm = FashionMNISTDataModule(data_dir=str(tiny_data), val_size=51, batch_size=64)
    module = _module()
    trainer = make_trainer(2, callbacks=[RecordImages(str(tmp_path))], **DDP_CPU)
    trainer.fit(module, datamodule=dm)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    n_train = 400 - 51
    for epoch in ("0", "1"):
        a, b = set(ranks[0][epoch]), set(ranks[1][epoch])
        assert not a & b and len(a) == len(b) == n_train // 2  # disjoint halves of the epoch
    assert set(ranks[0]["0"]) != set(ranks[0]["1"])  # reshuffled each epoch
    # The synced val/loss is the mean over the whole validation split (51 images, 26 + 25 per rank):
    # the same number one process gets for the same weights (rank 0's, returned by ddp_spawn).
    ddp_val = float(trainer.callback_metrics["val/loss"])
    single = make_trainer(1, accelerator="cpu").validate(module, datamodule=FashionMNISTDataModule(
        data_dir=str(tiny_data), val_size=51, batch_size=64), verbose=False)[0]["val/loss"]
    assert math.isclose(ddp_val, single, rel_tol=1e-5)


@pytest.mark.slow
def test_a_ddp_trial_is_scored_or_pruned_and_the_study_goes_on(tiny_data):
    # lr 1e6 diverges on the first epoch (NaN/inf): the threshold pruner stops it; 3e-3 completes.
    space = {**SPACE, "lr": {"type": "categorical", "choices": [1.0e6, 3.0e-3]}, "batch_norm": False}
    path = write_study("ddp", epochs=2, space=space, trainer=DDP_CPU, pruner="threshold",
                       pruner_args={"upper": 1.0e3})
    spec, storage = load_study(path), "sqlite:///ddp.db"
    study = open_study(spec, storage)
    for lr in (1.0e6, 3.0e-3):
        study.enqueue_trial({"latent_dim": 4, "n_channels": 2, "optimizer": "adam", "lr": lr})
    study = run_study(spec, 2, storage, data_dir=str(tiny_data), progress=False)
    pruned, complete = sorted(finished(study), key=lambda t: t.state != TrialState.PRUNED)
    assert pruned.state == TrialState.PRUNED and pruned.params["lr"] == 1.0e6
    assert pruned.user_attrs["epochs_run"] == 1 < spec.epochs
    assert complete.state == TrialState.COMPLETE and complete.user_attrs["epochs_run"] == 2
    curve = complete.user_attrs["history"]["val/clean_mse"]  # the CAE's score
    assert complete.value == min(curve) and all(math.isfinite(v) for v in curve)
    assert Path(complete.user_attrs["checkpoint"]).is_file()
    (meta,) = optuna.artifacts.get_all_artifact_meta(complete, storage=study._storage)
    assert meta.filename == "reconstructions.png"


@pytest.mark.slow
def test_cli_ddp_fit_reports_once(tiny_data):
    """`aecls fit` with strategy ddp re-runs the command per rank: rank 0 alone prints and tests."""
    repo = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-m", "aecls.cli", "fit", "--config", str(repo / "configs/cae.yaml"),
                        "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp",
                        "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
                        "--data.data_dir", str(tiny_data), "--data.val_size", "50",
                        "--model.init_args.net.n_channels", "2"],
                       capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "PYTHONPATH": str(repo)})
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("best checkpoint:") == 1 and r.stdout.count("test/loss") == 1, r.stdout
