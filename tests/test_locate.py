"""Finding the IDX files: search order, torchvision layout, and the message when nothing is found."""

from __future__ import annotations

import pytest

from aecls.cli import main
from aecls.core.errors import DataError
from aecls.data.locate import locate
from tests.conftest import write_dataset


def test_data_dir_and_raw_files(tmp_path):
    d = write_dataset(tmp_path / "raw", n_train=20, n_test=10, gz=False)
    found = locate(data_dir=d)
    assert found["train"][0] == d / "train-images-idx3-ubyte"


def test_order_data_dir_beats_env(tmp_path, monkeypatch):
    a, b = write_dataset(tmp_path / "a", 20, 10), write_dataset(tmp_path / "b", 20, 10)
    monkeypatch.setenv("AECLS_DATA", str(b))
    assert locate(data_dir=a)["test"][1].parent == a
    assert locate()["test"][1].parent == b


def test_env_beats_torchvision_layout(tmp_path, monkeypatch):
    tv = write_dataset(tmp_path / "data" / "FashionMNIST" / "raw", 20, 10)  # ./data/... (cwd is tmp_path)
    assert locate()["train"][0].parent.resolve() == tv.resolve()
    env = write_dataset(tmp_path / "env", 20, 10)
    monkeypatch.setenv("AECLS_DATA", str(env))
    assert locate()["train"][0].parent == env


def test_torchvision_root_as_data_dir(tmp_path):
    raw = write_dataset(tmp_path / "root" / "MNIST" / "raw", 20, 10)
    assert locate("mnist", data_dir=tmp_path / "root")["train"][0].parent == raw


def test_explicit_data_dir_missing_is_an_error_naming_the_fixes(tmp_path):
    with pytest.raises(DataError) as info:
        locate(data_dir=tmp_path / "empty")
    msg = str(info.value)
    for needle in ("empty", "AECLS_DATA", "apt-get install dataset-fashion-mnist", "download=True"):
        assert needle in msg


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset 'cifar'"):
        locate("cifar")


def test_cli_exit_code_2_on_missing_data(tmp_path, capsys):
    assert main(["data", "--data-dir", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aecls: error:") and err.count("\n") == 1 and "Traceback" not in err


def test_cli_data_summary(tiny_data, capsys):
    assert main(["data", "--data-dir", str(tiny_data)]) == 0
    out = capsys.readouterr().out
    assert "train    400 images" in out and "test     100 images" in out
