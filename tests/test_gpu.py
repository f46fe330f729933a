"""On a CUDA device (skipped without one; scripts/gpu_check.sh runs these): trials train on the
GPU, workers share it, batches and shards live on it."""

from __future__ import annotations

import pytest
import torch

from aecls.data.batches import DeviceBatches
from aecls.hpo.run import run_study, visible_gpus
from aecls.hpo.space import load_study
from tests.helpers import finished, write_study

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


def test_visible_gpus_are_the_devices_torch_sees(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert visible_gpus() == [str(i) for i in range(torch.cuda.device_count())]


def test_shards_on_the_gpu():
    images = torch.randint(0, 255, (11, 28, 28), dtype=torch.uint8, device="cuda")
    labels = torch.arange(11, device="cuda")
    seen = [y for r in range(2) for _, ys in DeviceBatches(images, labels, 4, shuffle=True, rank=r,
                                                            world_size=2) for y in ys.tolist()]
    assert sorted(seen) == list(range(11))
    x, _ = next(iter(DeviceBatches(images, labels, 4)))
    assert x.is_cuda and x.dtype == torch.float32 and float(x.max()) <= 1.0


@pytest.mark.parametrize("workers", [1, 2])
def test_study_trials_train_on_the_gpu(tiny_data, workers):
    spec = load_study(write_study(f"gpu{workers}", epochs=2, trainer={"accelerator": "gpu"}))
    storage = "journal:g.journal" if workers > 1 else "sqlite:///g.db"
    study = run_study(spec, 3, storage, workers=workers, data_dir=str(tiny_data), progress=False)
    assert len(finished(study)) == 3
    assert all(t.user_attrs["device"].startswith("cuda") for t in finished(study))


@pytest.mark.parametrize("option", [["--speed.channels_last", "true"], ["--trainer.precision", "bf16-mixed"],
                                    ["--speed.fused_optimizer", "true"]])
def test_speed_options_train_on_the_gpu_and_load(tiny_data, option):
    from aecls.cli import main
    from tests.helpers import checkpoints, fit

    assert fit(tiny_data, "cae.yaml", "--trainer.max_epochs", "1", "--trainer.accelerator", "gpu",
               "--test_after_fit", "false", *option) == 0
    (best,) = checkpoints()
    assert main(["test", "--ckpt", str(best), "--accelerator", "gpu"]) == 0


def test_fused_and_channels_last_steps_match_eager_on_cuda():
    from aecls.modules import AutoEncoder
    from aecls.nets import NetConfig

    def steps(channels_last: bool, fused: bool) -> list[float]:
        torch.manual_seed(0)
        model = AutoEncoder(NetConfig(latent_dim=8, n_channels=4, hidden=16)).cuda()
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2, fused=fused)
        g = torch.Generator(device="cuda").manual_seed(1)
        out = []
        for _ in range(4):
            opt.zero_grad()
            x = torch.rand(16, 1, 28, 28, device="cuda", generator=g)
            loss = model.compute((x, None), "train")["loss"]
            loss.backward()
            opt.step()
            out.append(loss.item())
        return out

    ref = steps(False, False)
    for cl, fused in ((True, False), (False, True), (True, True)):
        assert steps(cl, fused) == pytest.approx(ref, rel=1e-3), (cl, fused)
