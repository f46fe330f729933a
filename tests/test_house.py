"""The house: imports point one way (no circles, deferred imports included), the command line
loads no torch for --help, and its flags follow Lightning's conventions."""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from aecls.cli import main
from aecls.transfer.config import SweepConfig
from tests.helpers import checkpoints, fit

PACKAGE = Path(__file__).resolve().parents[1] / "aecls"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """aecls module -> the aecls modules it imports anywhere in its file (functions too)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            deps |= {t for t in targets if t in modules and t != name}
        graph[name] = deps
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (as a path that ends where it starts), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return [*path[path.index(dep):], dep]
            if dep not in state and (found := visit(dep, [*path, dep])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_the_circle_finder_finds_circles():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_circles_in_aecls():
    graph = import_graph()
    assert "aecls.pipeline" in graph["aecls.cli.main"]  # deferred imports are seen
    assert find_circle(graph) is None


# Layers, lowest first: a module imports its own layer and those before it only. The ground floor
# (core) is what every layer may use; the modules' speed options live beside them (modules/); how
# results are judged (evaluation) sits on the modules (its baselines are models); training is the
# one train function, the Trainer factory and what reads checkpoints; the pipeline and the CLI
# (fit.py, LightningCLI's, among it) sit on top.
LAYERS = [
    ("core", ("aecls.core",)), ("data", ("aecls.data",)), ("nets", ("aecls.nets",)),
    ("modules", ("aecls.modules",)), ("evaluation", ("aecls.evaluation",)), ("training", ("aecls.training",)),
    ("hpo", ("aecls.hpo",)), ("transfer", ("aecls.transfer",)), ("report", ("aecls.report",)),
    ("top", ("aecls.pipeline", "aecls.fullrun", "aecls.cli")),
]


def layer_of(module: str) -> int | None:
    for i, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(f"{p}.") for p in prefixes):
            return i
    return None


def test_imports_point_down_the_layers():
    """Issue #38: no circle between parts either (modules <-> encoders, training -> report)."""
    graph = import_graph()
    unplaced = sorted(m for m in graph if m != "aecls" and layer_of(m) is None)
    assert not unplaced, f"place these in LAYERS: {unplaced}"
    upward = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})"
              for m, deps in sorted(graph.items()) if m != "aecls"
              for d in sorted(deps) if d != "aecls" and layer_of(d) > layer_of(m)]
    assert not upward, upward


def test_nothing_imports_the_cli_but_the_cli():
    graph = import_graph()
    users = {m for m, deps in graph.items() if any(d.startswith("aecls.cli") for d in deps)}
    assert users <= {m for m in graph if m.startswith("aecls.cli")}


def test_help_loads_neither_torch_nor_lightning():
    code = ("import sys; from aecls.cli.main import _parser; p = _parser(); p.format_help(); "
            "[a.choices[c].format_help() for a in p._subparsers._group_actions for c in a.choices]; "
            "print(sorted(m for m in ('torch', 'lightning', 'optuna', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent).stdout
    assert out.strip() == "[]"


def test_a_study_file_reads_without_torch():
    """A study file is data: read_study (aecls.hpo.spec) loads neither torch nor Lightning; the
    checks that build modules are aecls.hpo.space's."""
    code = ("import sys; from aecls.hpo.spec import read_study; s = read_study('studies/quickstart.yaml'); "
            "s.fingerprint(); print(s.name, sorted(m for m in ('torch', 'lightning') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent).stdout
    assert out.strip() == "quickstart []"


def test_sweep_flags_come_from_its_config(capsys):
    with pytest.raises(SystemExit):
        main(["transfer", "sweep", "--help"])
    out = capsys.readouterr().out
    for f in fields(SweepConfig):
        assert "--" + f.name.replace("_", "-") in out
    assert "(default 100,1000,10000,all)" in out and "(default 0.1)" in out and "--data.data_dir" in out


def test_fit_offers_no_optimizer_flags(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    out = capsys.readouterr().out
    assert "--trainer.max_epochs" in out and "--optimizer" not in out and "--lr_scheduler" not in out


def test_test_takes_lightnings_spelling(tiny_data, capsys):
    assert fit(tiny_data, "cae.yaml", "--trainer.max_epochs", "1", "--test_after_fit", "false") == 0
    (best,) = checkpoints()
    config = Path("c.yaml")
    config.write_text(f"data:\n  data_dir: {tiny_data}\n")
    assert main(["test", "--config", str(config), "--ckpt_path", str(best), "--no-baselines"]) == 0
    assert "test/mse" in capsys.readouterr().out
    assert main(["test", "--ckpt", str(best), "--data.data_dir", str(tiny_data / "missing")]) == 2
    assert "missing" in capsys.readouterr().err


def _all_dests(parser) -> set[str]:
    """Every option destination of the aecls parser and its subcommands."""
    import argparse

    dests = {a.dest for a in parser._actions if a.option_strings}
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for sub in a.choices.values():
                dests |= _all_dests(sub)
    return dests


def test_every_setting_an_error_names_has_a_flag():
    """Issue #38: the flags an error points to are read from the parser, not listed by hand; so
    every setting the library names (`setting=`, or `check`'s third argument) must be an option of
    some command (or LightningCLI's ckpt_path)."""
    from aecls.cli.main import _parser, flags_for

    named: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            values = [k.value for k in node.keywords if k.arg == "setting"]
            if getattr(node.func, "id", None) == "check" and len(node.args) == 3:
                values.append(node.args[2])
            for v in values:
                parts = v.elts if isinstance(v, ast.Tuple) else [v]
                named |= {p.value for p in parts if isinstance(p, ast.Constant) and isinstance(p.value, str)}
    assert {"allow_changes", "select", "seeds", "host", "port", "out", "log_dir"} <= named
    assert named - _all_dests(_parser()) <= {"ckpt_path"}, named - _all_dests(_parser())
    assert flags_for(["study", "run", "s.yaml"], ("out", "log_dir")) == "--out/--log-dir"
    assert flags_for(["study", "serve"], "port") == "--port"
    assert flags_for(["transfer", "compare", "a=x"], ("vary", "allow_unlike")) == "--vary/--allow-unlike"
    assert flags_for(["transfer", "sweep"], "head_hidden") == "--head-hidden"
    assert flags_for(["fit", "--config", "c.yaml"], "ckpt_path") == "--ckpt_path"
    assert flags_for(["fit"], "data_dir") == "--data.data_dir"
    assert flags_for(["pipeline"], "data_dir") == "--data-dir"
    assert flags_for(["report"], "select") == ""  # a setting the command has no flag for: no hint


def test_every_sweep_method_is_paired_and_reads_only_settings():
    """The sweep's methods are one registry (aecls.transfer.methods): every semi-supervised method
    is paired in a comparison against what it builds on, every method it is paired against is
    registered, and every setting a method reads is a sweep setting (else two sweeps differing in
    it would be taken as alike, or unlike)."""
    from aecls.transfer.methods import method_names, methods
    from aecls.transfer.runs import sweep_settings

    known = methods()
    assert all(known[m].paired_against for m in method_names(kind="semi-supervised"))
    assert all(set(m.paired_against) <= set(known) - {m.name} for m in known.values())
    assert all(known[m].kind == "semi-supervised" for m in method_names(own_views=True))
    assert all(set(m.settings) <= set(sweep_settings()) for m in known.values())
