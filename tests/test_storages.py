"""Storages: reading commands create nothing, one study name on two storages does not mix outputs, file
storages need their folder, and no password is ever shown."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from aecls.cli import main
from aecls.core.errors import AeclsError, mask_secrets
from aecls.hpo.storage import make_storage
from tests.helpers import one_line_error, write_study


@pytest.mark.parametrize("command", ["best", "plots"])
def test_reading_commands_create_no_storage_and_no_study(command, tiny_data, capsys):
    path = write_study("tiny")
    assert main(["study", command, str(path), "--storage", "sqlite:///nonexist.db"]) == 2
    assert "no such file (nonexist.db)" in one_line_error(capsys)
    assert not Path("nonexist.db").exists()
    assert main(["study", command, str(path), "--storage", "journal:none.journal"]) == 2
    assert "no such file (none.journal)" in one_line_error(capsys)
    assert not Path("none.journal").exists()
    optuna.create_study(study_name="other", storage="sqlite:///other.db")
    assert main(["study", command, str(path), "--storage", "sqlite:///other.db"]) == 2
    assert "no study tiny on sqlite:///other.db" in one_line_error(capsys)
    assert optuna.get_all_study_names("sqlite:///other.db") == ["other"]


def test_same_study_name_on_two_storages_does_not_mix_outputs(tiny_data, capsys):
    path = str(write_study("tiny", epochs=1))
    common = ["--n-trials", "1", "--data-dir", str(tiny_data), "--no-progress"]
    assert main(["study", "run", path, *common]) == 0
    capsys.readouterr()
    assert main(["study", "run", path, *common, "--storage", "journal:tiny.journal"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1, err  # one line, and no "A new study created" before it
    # both storages written alike (absolute paths), and the refusal created neither study nor file
    assert (f"lightning_logs/tiny holds study tiny of storage {Path('optuna.db').resolve()}, "
            f"not of {Path('tiny.journal').resolve()}:") in err
    assert "created" not in captured.out + captured.err
    assert not Path("tiny.journal").exists()
    assert sorted(p.name for p in Path("lightning_logs/tiny").iterdir()) == [".aecls_storage", "trial_0"]
    assert len(list(Path("lightning_logs/tiny/trial_0").glob("events.out.tfevents.*"))) == 1
    # its own folders are fine
    assert main(["study", "run", path, *common, "--storage", "journal:tiny.journal",
                 "--log-dir", "logs_j", "--out", "out_j"]) == 0


def test_file_storages_need_an_existing_folder_and_make_none():
    for url in ("journal:/nonexistent_dir/x.journal", "sqlite:////nonexistent_dir/x.db"):
        with pytest.raises(AeclsError, match="folder /nonexistent_dir does not exist; create it first"):
            make_storage(url)
    assert not Path("/nonexistent_dir").exists()


@pytest.mark.parametrize("text", [
    "cannot open storage postgresql://aecls:s3cret@127.0.0.1:5/optuna: OperationalError",
    "could not parse 'postgresql+psycopg://aecls:s3cret@host/db'",
    "postgresql://aecls:s3cret@h/db and mysql://u:s3cret@h2/db",
])
def test_mask_secrets(text):
    masked = mask_secrets(text)
    assert "s3cret" not in masked and ":***@" in masked


def test_no_password_when_the_server_is_down(capsys):
    path = str(write_study("tiny"))
    url = "postgresql://aecls:s3cret@127.0.0.1:1/optuna"  # nothing listens on port 1
    for cmd in (["study", "best", path], ["study", "plots", path], ["study", "run", path, "--n-trials", "1"]):
        assert main([*cmd, "--storage", url]) == 2
        err = one_line_error(capsys)
        assert "s3cret" not in err and "aecls:***@127.0.0.1:1" in err, err
