"""The label-efficiency sweep on tiny data: outputs, rows, and clear errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from sklearn.decomposition import PCA

from aecls.cli import main
from aecls.modules import AutoEncoder
from aecls.modules.encoders import export_encoder
from aecls.nets import NetConfig
from aecls.training.train import train
from aecls.transfer.config import DEFAULT_METHODS as METHODS  # what a sweep runs unless told
from tests.helpers import write_sweep


def _encoder(tmp_path) -> Path:
    torch.manual_seed(0)
    ae = AutoEncoder(NetConfig(latent_dim=6, n_channels=4, hidden=16))
    return export_encoder(tmp_path / "enc.pt", ae.encoder, ae.net_cfg, "cae")


def test_sweep_writes_csv_markdown_png(tiny_data, tmp_path, capsys):
    enc = _encoder(tmp_path)
    argv = ["transfer", "sweep", "--encoder", str(enc), "--labels", "20,all", "--seeds", "2",
            "--epochs", "1", "--min-steps", "3", "--data-dir", str(tiny_data), "--val-size", "50",
            "--out", "sw", "--no-progress"]
    assert main(argv) == 0
    rows = list(csv.DictReader(open("sw/sweep.csv")))
    assert len(rows) == 2 * 2 * len(METHODS)
    assert {r["method"] for r in rows} == set(METHODS) and {r["labels"] for r in rows} == {"20", "350"}
    assert all(0.0 <= float(r["test_acc"]) <= 1.0 for r in rows)
    table = Path("sw/sweep.md").read_text().splitlines()
    header = next(i for i, line in enumerate(table) if line.startswith("| labels"))
    assert table[header].count("|") == len(METHODS) + 2
    assert [line.split("|")[1].strip() for line in table[header + 2 : header + 4]] == ["20", "350"]
    assert " ± " in table[header + 2]
    assert Path("sw/sweep.png").stat().st_size > 5000
    assert "| labels |" in capsys.readouterr().out


def test_pca_baseline_with_a_latent_wider_than_the_budget(tiny_data, tmp_path, monkeypatch):
    import aecls.transfer.runners as sweep

    kept = []

    def pca(n_components, **kw):
        kept.append(n_components)
        return PCA(n_components, **kw)

    monkeypatch.setattr(sweep, "PCA", pca)
    torch.manual_seed(0)
    ae = AutoEncoder(NetConfig(latent_dim=30, n_channels=4, hidden=0))
    enc = export_encoder(tmp_path / "wide.pt", ae.encoder, ae.net_cfg, "cae")
    assert main(["transfer", "sweep", "--encoder", str(enc), "--labels", "20", "--seeds", "1",
                 "--methods", "logreg_pca", "--data-dir", str(tiny_data), "--val-size", "50",
                 "--out", "sw", "--no-progress"]) == 0  # PCA keeps 20 components, not 30
    (row,) = csv.DictReader(open("sw/sweep.csv"))
    assert row["method"] == "logreg_pca" and 0 <= float(row["test_acc"]) <= 1
    assert kept == [20]  # as many components as labelled images, not the latent's 30


def test_budget_larger_than_data_is_a_clear_error(tiny_data, tmp_path, capsys):
    enc = _encoder(tmp_path)
    argv = ["transfer", "sweep", "--encoder", str(enc), "--labels", "5000", "--seeds", "1",
            "--data-dir", str(tiny_data), "--val-size", "50", "--no-progress",
            "--methods", "logreg_pixels"]
    assert main(argv) == 2
    assert "label budget 5000" in capsys.readouterr().err


def test_sweep_settings_reach_the_classifier_and_data(tiny_data, tmp_path, monkeypatch):
    import aecls.transfer.runners as transfer

    seen = []

    def spy(cfg, prepared=None):  # what each run trained
        run = train(cfg, prepared)
        seen.append((run.module.hparams.mode, run.module.head, run.module.hparams.encoder_lr_scale,
                     run.datamodule.hparams.augment))
        return run

    monkeypatch.setattr(transfer, "train", spy)
    enc = _encoder(tmp_path)
    assert main(["transfer", "sweep", "--encoder", str(enc), "--labels", "20", "--seeds", "1",
                 "--methods", "frozen,finetune", "--epochs", "1", "--min-steps", "2",
                 "--head-hidden", "0", "--encoder-lr-scale", "0.5", "--augment",
                 "--data-dir", str(tiny_data), "--val-size", "50", "--out", "sw", "--no-progress"]) == 0
    assert [s[0] for s in seen] == ["frozen", "finetune"]
    for _, head, scale, augment in seen:
        assert [type(m) for m in head] == [torch.nn.Dropout, torch.nn.Linear]  # linear head
        assert scale == 0.5 and augment is True


@pytest.mark.parametrize(("flag", "value"), [("--head-hidden", "-1"), ("--encoder-lr-scale", "0")])
def test_bad_sweep_settings(tiny_data, tmp_path, capsys, flag, value):
    enc = _encoder(tmp_path)
    assert main(["transfer", "sweep", "--encoder", str(enc), flag, value,
                 "--data-dir", str(tiny_data), "--no-progress"]) == 2
    assert flag in capsys.readouterr().err


def test_bad_encoder_path(tiny_data, capsys):
    assert main(["transfer", "sweep", "--encoder", "missing.pt", "--data-dir", str(tiny_data)]) == 2
    assert "encoder not found" in capsys.readouterr().err


def test_encoder_folders_given_by_mistake_say_what_to_give(tiny_data, capsys):
    """Issue #40, 2: a study's folder before `study best` ran, and a trial's folder."""
    study = Path("artifacts/mystudy")
    study.mkdir(parents=True)
    (study / "study.json").write_text('{"study": "mystudy", "best_trial": 2}')
    ckpt = Path("lightning_logs/mystudy/trial_2/checkpoints/best.ckpt")
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    cases = [(study, "no best_encoder.pt in artifacts/mystudy: `aecls study best mystudy` exports"),
             (ckpt.parents[1], f"is a training run, not an encoder export: give its checkpoint ({ckpt})")]
    for given, said in cases:
        assert main(["transfer", "sweep", "--encoder", str(given), "--data-dir", str(tiny_data)]) == 2
        err = capsys.readouterr().err.strip()
        assert said in err and "\n" not in err, err


def test_mnist_pretraining_transfers_to_fashion(tiny_data, tmp_path, capsys):
    """Seed 001's experiment on synthetic files: a DAE pretrained on 'MNIST', fine-tuned on Fashion."""
    from tests.conftest import write_dataset
    from tests.helpers import fit

    mnist = write_dataset(tmp_path / "mnist_root" / "MNIST" / "raw", seed=7)  # torchvision layout
    assert fit(tiny_data, "dae.yaml", "--data.dataset", "mnist", "--data.data_dir",
               str(tmp_path / "mnist_root"), "--trainer.max_epochs", "1", "--test_after_fit", "false") == 0
    (ckpt,) = Path("lightning_logs/dae").glob("version_0/checkpoints/best-*.ckpt")
    hp = torch.load(ckpt, map_location="cpu", weights_only=True)["datamodule_hyper_parameters"]
    assert hp["dataset"] == "mnist" and Path(hp["data_dir"]) == mnist.parents[1]  # pretrained on 'MNIST'
    argv = ["transfer", "sweep", "--encoder", str(ckpt), "--labels", "50", "--seeds", "1",
            "--epochs", "1", "--min-steps", "3", "--data-dir", str(tiny_data), "--val-size", "50",
            "--methods", "scratch,finetune", "--out", "mn", "--no-progress"]
    assert main(argv) == 0
    rows = list(csv.DictReader(open("mn/sweep.csv")))
    assert [r["method"] for r in rows] == ["scratch", "finetune"]


def test_compare_pairs_seeds_and_gives_verdicts(tmp_path, capsys):
    a = write_sweep(tmp_path / "a", {(100, "frozen"): [0.70, 0.60, 0.65], (100, "finetune"): [0.7, 0.7, 0.7],
                                      (100, "scratch"): [0.5, 0.5, 0.5]})
    # b: +5 points on every seed for frozen (a paired win despite the seeds' spread), finetune mixed
    b = write_sweep(tmp_path / "b", {(100, "frozen"): [0.75, 0.65, 0.70], (100, "finetune"): [0.8, 0.6, 0.7],
                                      (100, "scratch"): [0.5, 0.5, 0.5]})
    assert main(["transfer", "compare", f"recon={a}", f"probe={b / 'sweep.csv'}", "--out", "cmp"]) == 0
    md = paired_section(Path("cmp/compare.md").read_text())
    rows = {line.split("|")[2].strip(): line for line in md.splitlines() if line.startswith("| 100 |")}
    assert set(rows) == {"frozen", "finetune"}  # only the modes that use the encoder
    assert "65.00 ± 5.00" in rows["frozen"] and "+5.00 ± 0.00 (3 seeds, p < 0.001)" in rows["frozen"]
    assert "probe beats recon" in rows["frozen"] and "probe ties recon" in rows["finetune"]
    assert "+0.00 ± 10.00 (3 seeds, p = 1)" in rows["finetune"]
    # every pretrained cell against scratch and raw pixels on the same subsets (scratch: a's)
    base = Path("cmp/compare.md").read_text().split("## Against scratch and raw pixels")[1].split("\n## ")[0]
    rows = {tuple(c.strip() for c in line.split("|")[2:4]): line for line in base.splitlines()
            if line.startswith("| 100 |")}
    assert "+15.00 ± 5.00 (3 seeds, p = 0.035): better" in rows[("recon", "frozen")]
    assert "+20.00 ± 0.00 (3 seeds, p < 0.001): better" in rows[("recon", "finetune")]
    assert rows[("probe", "frozen")].endswith("| - |")  # no logreg_pixels in either sweep
    assert Path("cmp/compare.png").stat().st_size > 1000


def test_the_comparison_figure_names_every_sweep_whatever_panel_draws_it(tmp_path, monkeypatch):
    import matplotlib.pyplot

    from aecls.transfer import plots

    figures = []
    monkeypatch.setattr("aecls.core.plotting.save_figure", lambda fig, path, **kw: figures.append(fig))
    stats = {"published": {(1000, "fixmatch"): (0.83, 0.01)},  # in the second panel only
             "other": {(1000, "frozen"): (0.80, 0.01), (1000, "fixmatch"): (0.84, 0.01)},
             "pixels": {(1000, "logreg_pixels"): (0.79, 0.0)}}
    plots.panels_plot(stats, ("frozen", "fixmatch"), ("logreg_pixels",), tmp_path / "c.png", "t")
    legend = figures[0].legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["published", "other", "logreg_pixels"]
    matplotlib.pyplot.close(figures[0])  # what save_figure does after saving


def paired_section(md: str) -> str:
    return md.split("## Paired differences")[1].split("\n## ")[0]


def test_compare_lays_three_tiny_sweeps_side_by_side(tiny_data, tmp_path, capsys):
    """Three encoders' real sweeps (one with FixMatch, run apart) -> the side-by-side table, the
    paired differences, the semi-supervised verdict and the figure."""
    names = []
    for seed, name in enumerate(("cae", "dae", "simclr")):
        torch.manual_seed(seed)
        ae = AutoEncoder(NetConfig(latent_dim=6, n_channels=4, hidden=16))
        enc = export_encoder(tmp_path / f"{name}.pt", ae.encoder, ae.net_cfg, "cae")
        base = ["transfer", "sweep", "--encoder", str(enc), "--labels", "20", "--seeds", "2", "--epochs", "1",
                "--min-steps", "3", "--data-dir", str(tiny_data), "--val-size", "50", "--no-progress"]
        assert main([*base, "--methods", "frozen,finetune,logreg_pixels", "--out", f"sw_{name}"]) == 0
        names.append(f"{name}=sw_{name}")
    fm = ["--methods", "fixmatch", "--fixmatch-steps", "3", "--unlabelled-ratio", "1", "--out", "sw_fm"]
    assert main([*base, *fm]) == 0
    capsys.readouterr()
    assert main(["transfer", "compare", *names, "simclr=sw_fm", "--out", "cmp"]) == 0
    md = Path("cmp/compare.md").read_text()
    side = md.split("## Side by side")[1].split("\n## ")[0]
    header = next(line for line in side.splitlines() if line.startswith("| labels"))
    assert [c.strip() for c in header.split("|")[3:-1]] == ["cae", "dae", "simclr"]
    rows = {line.split("|")[2].strip(): line for line in side.splitlines() if line.startswith("| 20 |")}
    assert list(rows) == ["frozen", "finetune", "fixmatch", "logreg_pixels"]
    assert rows["fixmatch"].count(" - ") == 2 and " ± " in rows["fixmatch"]  # simclr only
    assert side.count("**") == 2 and "- 20 labels: " in side and "Run time" in side
    assert "| 20 | frozen |" in paired_section(md) and "simclr - cae" in paired_section(md)
    semi = md.split("## Semi-supervised vs what it builds on")[1]
    assert "| simclr | 20 | fixmatch | finetune |" in semi and "(2 seeds)" in semi
    assert Path("cmp/compare.png").stat().st_size > 5000
    # a CSV given twice is refused, under one name or two
    assert main(["transfer", "compare", "cae=sw_cae", "cae=sw_cae", "dae=sw_dae", "--out", "cmp2"]) == 2
    assert "sw_cae/sweep.csv is given twice (cae and cae)" in capsys.readouterr().err
    assert main(["transfer", "compare", "cae=sw_cae", "dae=sw_cae/sweep.csv", "--out", "cmp2"]) == 2
    assert "sw_cae/sweep.csv is given twice (cae and dae)" in capsys.readouterr().err
    assert not Path("cmp2").exists()


UNLIKE_ACC = {(100, "frozen"): [0.70, 0.60, 0.65], (100, "scratch"): [0.5, 0.5, 0.5]}


@pytest.mark.parametrize(("changed", "setting"), [
    ({"head_hidden": 512}, "head_hidden: a 64, b 512"), ({"epochs": 3}, "epochs: a 10, b 3"),
    ({"min_steps": 50}, "min_steps: a 300, b 50"), ({"val_size": 1000}, "val_size: a 5000, b 1000"),
])
def test_compare_refuses_unlike_sweeps_naming_the_setting(tmp_path, capsys, changed, setting):
    a = write_sweep(tmp_path / "a", UNLIKE_ACC)
    b = write_sweep(tmp_path / "b", {(100, "frozen"): [0.75, 0.65, 0.70]}, **changed)
    assert main(["transfer", "compare", f"a={a}", f"b={b}", "--out", "cmp"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aecls: error: the sweeps are unlike") and setting in err
    assert "--allow-unlike" in err and "\n" not in err.strip() and not Path("cmp").exists()
    # allowed: side by side, the differing setting said, and no verdict across the sweeps
    assert main(["transfer", "compare", f"a={a}", f"b={b}", "--out", "cmp", "--allow-unlike"]) == 0
    md = Path("cmp/compare.md").read_text()
    said = [line for line in md.splitlines() if line.startswith(("| 100", "- 100"))]
    assert "**Unlike sweeps**" in md and setting in md and said
    assert not any(word in line for line in said for word in (" beats ", " ties ", ": better", ": worse"))
    assert "no verdict (unlike sweeps)" in paired_section(md) and "**" not in md.split("## Side")[1]
    assert json.loads(Path("cmp/compare.json").read_text())["allow_unlike"] is True


def test_compare_alike_where_it_matters_and_a_varied_setting(tmp_path, capsys):
    a = write_sweep(tmp_path / "a", UNLIKE_ACC)
    # a FixMatch setting is no difference for sweeps without FixMatch rows
    b = write_sweep(tmp_path / "b", {(100, "frozen"): [0.75, 0.65, 0.70]}, eval_ema=0.0)
    assert main(["transfer", "compare", f"a={a}", f"b={b}", "--out", "cmp"]) == 0
    assert "same settings but the encoder" in Path("cmp/compare.md").read_text()
    # ... and a difference where both have them; `--vary` makes it the subject, verdicts kept
    fm = {(100, "fixmatch"): [0.8, 0.7, 0.75]}
    c = write_sweep(tmp_path / "c", fm)
    d = write_sweep(tmp_path / "d", {(100, "fixmatch"): [0.85, 0.75, 0.8]}, eval_ema=0.0)
    both = ["transfer", "compare", f"ema={c}", f"weights={d}"]
    assert main([*both, "--out", "cmp2"]) == 2
    assert "eval_ema: ema 0.999, weights 0.0" in capsys.readouterr().err
    assert main([*both, "--out", "cmp2", "--vary", "eval_ema"]) == 0
    md = Path("cmp2/compare.md").read_text()
    assert "Varied on purpose" in md and "weights beats ema" in paired_section(md)
    assert json.loads(Path("cmp2/compare.json").read_text())["vary"] == ["eval_ema"]
    # a sweep that recorded no settings cannot be checked
    Path(d / "sweep.json").unlink()
    assert main([*both, "--out", "cmp3", "--vary", "eval_ema"]) == 2
    assert "no settings recorded beside it (sweep.json)" in capsys.readouterr().err


def test_compare_bad_inputs(tmp_path, capsys):
    assert main(["transfer", "compare", f"a={tmp_path}/none", f"b={tmp_path}/none"]) == 2
    assert "no sweep CSV" in capsys.readouterr().err
    (tmp_path / "bad.csv").write_text("x,y\n1,2\n")
    (tmp_path / "bad2.csv").write_text("x,y\n1,2\n")
    assert main(["transfer", "compare", f"a={tmp_path}/bad.csv", f"b={tmp_path}/bad2.csv"]) == 2
    assert "not a transfer sweep CSV" in capsys.readouterr().err
    assert main(["transfer", "compare", f"a={tmp_path}/bad.csv"]) == 2
    assert "at least two" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: NAME=PATH wanted
        main(["transfer", "compare", "nonamepath"])


def test_frozen_on_codes_computed_once_is_the_same_run(tiny_data, tmp_path):
    """The sweep's frozen runs train the head on codes computed once: the same predictions as
    encoding every batch at every step (the frozen encoder is a fixed function)."""
    from aecls.data import FashionMNISTDataModule
    from aecls.modules import OptimConfig
    from aecls.training.train import TrainConfig, build_module

    torch.manual_seed(0)  # BatchNorm and dropout must be in eval mode for fixed codes: both here
    ae = AutoEncoder(NetConfig(latent_dim=6, n_channels=4, hidden=16, batch_norm=True, dropout=0.2))
    enc = export_encoder(tmp_path / "enc.pt", ae.encoder, ae.net_cfg, "cae")
    model = {"family": "classifier", "init_args": {"mode": "frozen", "encoder_path": str(enc),
                                                   "optim": OptimConfig(lr=3e-3, scheduler="onecycle")}}
    trainer = {"max_epochs": -1, "max_steps": 12, "limit_val_batches": 0}

    def data():
        dm = FashionMNISTDataModule(data_dir=str(tiny_data), n_labels=40, seed=1, batch_size=16, val_size=50)
        dm.setup()
        return dm

    def predictions(run):
        return torch.cat(run.module.test_outputs["probs"])

    images = train(TrainConfig(model=model, data=data(), seed=3, test="final", trainer=trainer))
    torch.manual_seed(3)
    module = build_module(model)
    before = [p.detach().clone() for p in module.head.parameters()]
    coded = module.codes_once(data(), splits=("train", "test"))  # as the sweep: no validation pass
    assert coded.splits["train"][0].shape == (40, 6) and isinstance(module.encoder, torch.nn.Identity)
    assert set(coded.splits) == {"train", "test"}
    codes = train(TrainConfig(model=module, data=coded, seed=None, test="final", trainer=trainer))
    assert images.test["test/acc"] == codes.test["test/acc"]
    torch.testing.assert_close(predictions(codes), predictions(images), atol=1e-5, rtol=1e-4)
    assert any(not torch.equal(a, b) for a, b in zip(before, codes.module.head.parameters(), strict=True))
