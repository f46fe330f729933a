"""Numbers a statistician would sign: a validation score is never called a test score, validation
and test sweeps are never compared, every "± sd" is the sample sd, and settings count only where
a method reads them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from aecls.cli import main
from aecls.modules import AutoEncoder
from aecls.modules.encoders import export_encoder
from aecls.nets import NetConfig
from tests.helpers import one_line_error, write_sweep

ROOT = Path(__file__).resolve().parents[1]
ACC = {(100, "frozen"): [0.70, 0.60, 0.65], (100, "scratch"): [0.5, 0.55, 0.52]}


def _encoder(tmp_path) -> Path:
    torch.manual_seed(0)
    ae = AutoEncoder(NetConfig(latent_dim=6, n_channels=4, hidden=16))
    return export_encoder(tmp_path / "enc.pt", ae.encoder, ae.net_cfg, "cae")


def _sweep(enc, tiny_data, *extra) -> list[str]:
    return ["transfer", "sweep", "--encoder", str(enc), "--labels", "20", "--seeds", "2",
            "--data-dir", str(tiny_data), "--val-size", "50", "--no-progress",
            "--methods", "logreg_pixels", *extra]


def test_a_validation_sweep_says_validation_everywhere(tiny_data, tmp_path, capsys):
    enc = _encoder(tmp_path)
    assert main(_sweep(enc, tiny_data, "--score", "val", "--out", "val")) == 0
    out = capsys.readouterr().out
    assert "validation accuracy" in out and "test" not in out.lower().replace("--score", "")
    rows = list(csv.DictReader(open("val/sweep.csv")))
    assert "val_acc" in rows[0] and "test_acc" not in rows[0]
    md = Path("val/sweep.md").read_text()
    assert "Validation accuracy (%), mean ± sd over seeds (sd: the sample sd, n − 1)" in md
    assert "Test" not in md
    # a sweep scored on the test set says so once, at its start, with the way to choose settings
    assert main(_sweep(enc, tiny_data, "--out", "test")) == 0
    out = capsys.readouterr().out
    assert out.count("scored on the test set") == 1 and "--score val" in out
    assert out.index("scored on the test set") < out.index("run 1/2")
    assert "test accuracy" in out and "Test accuracy (%)" in Path("test/sweep.md").read_text()


def test_validation_and_test_sweeps_are_never_compared(tmp_path, capsys):
    t = write_sweep(tmp_path / "t", ACC)
    v = write_sweep(tmp_path / "v", {(100, "frozen"): [0.75, 0.65, 0.70]}, score="val")
    for extra in ([], ["--allow-unlike"], ["--vary", "score"]):
        assert main(["transfer", "compare", f"test={t}", f"val={v}", "--out", "cmp", *extra]) == 2
        err = one_line_error(capsys)
        assert ("scored on different images" in err or "score is never a setting" in err), err
    assert not Path("cmp").exists()
    # even between two validation sweeps, score is no setting to vary
    w = write_sweep(tmp_path / "w", ACC, score="val")
    assert main(["transfer", "compare", f"a={w}", f"b={v}", "--vary", "score", "--out", "cmp"]) == 2
    assert "score is never a setting a comparison may vary" in one_line_error(capsys)
    # two validation sweeps compare, and every table calls their numbers validation accuracy
    assert main(["transfer", "compare", f"a={w}", f"b={v}", "--out", "cmp"]) == 0
    md = Path("cmp/compare.md").read_text()
    assert "Validation accuracy (%), mean ± sd over seeds" in md and "Test accuracy" not in md
    assert "same validation accuracy that is tested" in md
    # and `aecls results` refuses a record that mixes them
    Path("mixed").mkdir()
    Path("mixed/compare.json").write_text(json.dumps({"runs": {"t": [str(t / "sweep.csv")],
                                                               "v": [str(v / "sweep.csv")]}}))
    Path("RESULTS.md").write_text("# R\n<!-- results: mixed -->\n<!-- /results -->\n")
    assert main(["results", "--check"]) == 2
    assert "scored on different images" in one_line_error(capsys)


def test_an_old_validation_sweep_reads_as_validation():
    """Sweeps written before the column was named for its score call a validation score test_acc;
    the settings beside them say val, and win."""
    from aecls.transfer.table import read_one

    old = write_sweep(Path("old"), ACC, score="val")
    text = (old / "sweep.csv").read_text()
    (old / "sweep.csv").write_text(text.replace("val_acc", "test_acc", 1))
    table = read_one(old / "sweep.csv")
    assert set(table.scores.values()) == {"val"}
    assert table.sweep("")[(100, "frozen")] == {0: 0.70, 1: 0.60, 2: 0.65}


def test_every_table_legend_says_the_sample_sd(tmp_path):
    from aecls.transfer.compare import compare_sweeps

    a = write_sweep(tmp_path / "a", ACC)
    b = write_sweep(tmp_path / "b", {(100, "frozen"): [0.75, 0.66, 0.70]})
    md = compare_sweeps({"a": str(a), "b": str(b)}, "cmp")["compare.md"].read_text()
    assert md.count("mean ± sd over seeds (sd: the sample sd, n − 1)") == 2  # side by side, paired
    assert "| 100 | frozen | 65.00 ± 5.00 |" in md  # numpy's default (ddof 0) printed 4.08
    assert "mean ± std" not in md


def test_results_md_uses_the_sample_sd_everywhere():
    text = (ROOT / "RESULTS.md").read_text()
    assert "± std" not in text and "sd: the sample sd, n − 1" in text


def test_compare_counts_only_the_settings_a_shared_method_reads(tmp_path, capsys):
    graphs = {(100, "graph"): [0.7, 0.6, 0.65], (100, "graph_laplace"): [0.71, 0.62, 0.64]}
    a = write_sweep(tmp_path / "a", graphs)
    # graph methods read neither the training length nor the head: alike
    b = write_sweep(tmp_path / "b", graphs, epochs=3, min_steps=50, head_hidden=0)
    assert main(["transfer", "compare", f"a={a}", f"b={b}", "--out", "cmp"]) == 0
    assert "same settings but the encoder" in Path("cmp/compare.md").read_text()
    capsys.readouterr()
    # where both ran a method that reads them, every difference is named in one message
    c = write_sweep(tmp_path / "c", ACC)
    d = write_sweep(tmp_path / "d", ACC, epochs=3, min_steps=50, head_hidden=0)
    assert main(["transfer", "compare", f"c={c}", f"d={d}", "--out", "cmp2"]) == 2
    err = one_line_error(capsys)
    for said in ("epochs: c 10, d 3", "min_steps: c 300, d 50", "head_hidden: c 64, d 0"):
        assert said in err
    # a setting misspelt in --vary is an error that names the settings
    assert main(["transfer", "compare", f"c={c}", f"d={d}", "--vary", "epoch", "--out", "cmp2"]) == 2
    err = one_line_error(capsys)
    assert "unknown settings ['epoch'] to vary" in err and "epochs" in err and "[--vary]" in err


def test_every_setting_is_read_by_some_method():
    """The methods' registry names each recorded setting but the encoder for some method (else no
    comparison would ever check it), and only settings that exist."""
    from aecls.transfer.methods import settings_read
    from aecls.transfer.runs import sweep_settings

    read = {k for keys in settings_read().values() for k in keys}
    assert read == set(sweep_settings()) - {"encoder"}


@pytest.mark.parametrize(("argv", "said"), [
    (["--methods", "logreg_pixels,logreg_pixels"], "methods ['logreg_pixels'] given twice"),
    (["--labels", "60000"], "label budget 60000"),
    (["--data-dir", "/nonexistent"], "/nonexistent"),
    (["--methods", "graph", "--graph-codes", "nothere.ckpt"], "nothere.ckpt"),
])
def test_a_refused_sweep_writes_nothing(tiny_data, tmp_path, capsys, argv, said):
    enc = _encoder(tmp_path)
    args = _sweep(enc, tiny_data, "--out", "refused")
    args[args.index("--methods"):args.index("--methods") + 2] = []
    if "--data-dir" in argv:
        args[args.index("--data-dir"):args.index("--data-dir") + 2] = []
    assert main([*args, *argv]) == 2
    assert said in one_line_error(capsys)
    assert not Path("refused").exists()


def test_a_headline_without_tests_says_so(capsys):
    """Two seeds give no paired test: the headline says there is no verdict, not "Holm-adjusted
    over the 0"."""
    from aecls.transfer.compare import compare_sweeps

    a = write_sweep(Path("results/h/a"), {(100, "frozen"): [0.7, 0.6], (100, "scratch"): [0.5, 0.5]})
    b = write_sweep(Path("results/h/b"), {(100, "frozen"): [0.75, 0.65]})
    compare_sweeps({"a": str(a), "b": str(b)}, "results/h")
    Path("RESULTS.md").write_text("# R\n<!-- headline: results/h -->\n<!-- /results -->\n")
    assert main(["results"]) == 0
    text = Path("RESULTS.md").read_text()
    assert "over the 0" not in text and "no cell has the 3 paired seeds a test needs" in text


def _pairs(text: str) -> set[tuple[str, str]]:
    import re

    return set(re.findall(r"(\d+\.\d+) ± (\d+\.\d+)", text))


def test_results_md_claims_are_true_of_its_rows():
    """A spread written by hand beside a mean that a generated block holds is that block's (the
    sample sd); the FixMatch-from-pseudo-labels section (now in the notebook) says which setting
    saw the test set and which FixMatch it beats."""
    import re

    text = (ROOT / "RESULTS.md").read_text()
    blocks = "".join(m.group(0) for m in re.finditer(r"<!-- (results|headline): .*?<!-- /results -->",
                                                     text, re.S))
    prose = re.sub(r"<!-- (results|headline): .*?<!-- /results -->", "", text, flags=re.S)
    generated = {}
    for mean, sd in _pairs(blocks):
        generated.setdefault(mean, set()).add(sd)
    stale = [(m, s) for m, s in _pairs(prose) if m in generated and s not in generated[m]]
    assert not stale, f"hand-written spreads that differ from the generated rows: {stale}"
    # that section moved, as it stood, to the notebook when the full run became the headline
    notebook = (ROOT / "docs/notebook.md").read_text()
    section = notebook.split("### FixMatch started from the graph pseudo-labels")[1].split("\n## ")[0]
    assert "nothing chosen on the test set" not in section
    assert "Seen the test set" in section and "--pseudo-tune-steps 300" in section
    assert "weight average" in section and "stronger variant" in section


def test_the_docs_say_pseudo_fixmatch_curves_are_kept():
    for page in ("docs/transfer.md", "docs/notebook.md"):
        text = " ".join((ROOT / page).read_text().split())
        assert "curve is not kept" not in text and "curves are not kept for `pseudo_fixmatch`" not in text
