"""Study files and the studies they name: mistakes are one line naming the file and key, a changed file
is refused unless allowed, a study is found by name, a continued study's export says it is stale."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aecls.cli import main
from aecls.core.errors import AeclsError
from aecls.hpo.space import load_study
from tests.helpers import one_line_error, write_study


@pytest.mark.parametrize(("over", "message"), [
    ({"epochs": "three"}, "epochs must be a whole number, got 'three'"),
    ({"n_trials": 2.5}, "n_trials must be a whole number, got 2.5"),
    ({"data": {"batch_sise": 128}}, "data: FashionMNISTDataModule.__init__() got an unexpected keyword "
                                    "argument 'batch_sise'"),
    ({"data": {"batch_size": 0}}, "data: batch sizes must be positive"),
    ({"space": {"optimizer": {"type": "categorical", "choices": ["adam", "adamx"]}}},
     "search-space entry optimizer='adamx': optim.name must be one of"),
    ({"space": {"lr": {"type": "float", "low": 0.0, "high": 0.1}}},
     "search-space entry lr=0.0: optim.lr must be > 0"),
    ({"space": {"scheduler": {"type": "categorical", "choices": ["onecycle", "step"]}}},
     "search-space entry scheduler='step'"),
    ({"space": {"loss": {"type": "categorical", "choices": ["mse", "l1"]}}}, "search-space entry loss='l1'"),
    ({"trainer": {"precision": "fp8"}}, "trainer: ValueError: Precision 'fp8' is invalid"),
])
def test_study_file_mistakes_name_the_file_and_key(over, message):
    path = write_study("bad", **over)
    with pytest.raises(AeclsError) as e:
        load_study(path)
    assert str(e.value).startswith(f"{path}: study bad: ") and message in str(e.value), str(e.value)


def test_every_reading_command_takes_allow_changes(tiny_data, capsys):
    path = write_study("tiny", epochs=1)
    assert main(["study", "run", str(path), "--n-trials", "1", "--data-dir", str(tiny_data),
                 "--no-progress"]) == 0
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "epochs": 2}))
    capsys.readouterr()
    for cmd in (["study", "plots", str(path)], ["study", "best", str(path), "--seeds", "1"]):
        assert main([*cmd, "--data-dir", str(tiny_data)]) == 2
        assert "allow the changes to continue it anyway" in (err := one_line_error(capsys))
        assert err.endswith("[--allow-changes]")
        assert main([*cmd, "--data-dir", str(tiny_data), "--allow-changes"]) == 0


def test_a_study_is_found_by_name_in_its_storage(tiny_data, capsys):
    Path("elsewhere").mkdir()
    path = write_study("walk", epochs=1, n_trials=1)
    path = path.rename(Path("elsewhere") / path.name)
    assert main(["study", "run", str(path), "--storage", "sqlite:///walk.db", "--data-dir", str(tiny_data),
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["study", "plots", "walk", "--storage", "sqlite:///walk.db"]) == 0
    assert "trials: 1 complete" in capsys.readouterr().out
    assert main(["study", "plots", "nowhere", "--storage", "sqlite:///walk.db"]) == 2
    err = capsys.readouterr().err
    assert "tried nowhere, studies/nowhere.yaml" in err and "no study nowhere on sqlite:///walk.db" in err


def test_a_continued_study_says_its_export_is_stale(capsys):
    """`study run` records its best trial in study.json each time it ends; an export (best.json)
    of an older best trial is then stale, and loading it says so, once, naming the command."""
    import json

    import torch

    from aecls.core.paths import BEST_FILE, ENCODER_FILE, STUDY_FILE
    from aecls.modules import AutoEncoder
    from aecls.modules.encoders import export_encoder, load_encoder, stale_export
    from aecls.nets import NetConfig

    folder = Path("artifacts/cont")
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    ae = AutoEncoder(NetConfig(latent_dim=4, n_channels=4, hidden=8))
    export_encoder(folder / ENCODER_FILE, ae.encoder, ae.net_cfg, "cae")
    (folder / BEST_FILE).write_text(json.dumps({"study": "cont", "trial": 0}))
    (folder / STUDY_FILE).write_text(json.dumps({"study": "cont", "best_trial": 0}))
    assert stale_export(folder) is None
    load_encoder(folder)
    assert "warning" not in capsys.readouterr().err  # fresh: no word
    (folder / STUDY_FILE).write_text(json.dumps({"study": "cont", "best_trial": 3}))  # continued
    for _ in range(2):  # a sweep loads it once a run: said once
        load_encoder(folder)
    err = capsys.readouterr().err
    assert err.count("the exported encoder is trial 0's, but study cont has a better trial since (3)") == 1
    assert "`aecls study best cont`" in err
    (folder / STUDY_FILE).unlink()  # no summary yet: nothing to compare
    assert stale_export(folder) is None
