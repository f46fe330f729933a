"""Pretrained encoders for the classifier: from a study export (best_encoder.pt, or its folder)
or from any aecls autoencoder checkpoint. Everything is loaded with weights_only=True, and built
through aecls.nets alone (a checkpoint's `net` hyper-parameters and its `encoder.*` weights) and the
registry (which family a checkpoint is): it lives in modules/, beside the classifier that uses it,
so loading an encoder never reaches above the model layer."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aecls.core.errors import AeclsError
from aecls.core.paths import BEST_FILE, ENCODER_FILE, STUDY_FILE
from aecls.modules.registry import checkpoint_family, code_halves
from aecls.nets import NetConfig, build_encoder


def export_encoder(path: str | Path, encoder: nn.Module, net: NetConfig, model: str) -> Path:
    """Save an encoder's weights with the config that rebuilds it (plain types only)."""
    path = Path(path)
    torch.save({"state_dict": encoder.state_dict(), "net": asdict(net), "model": model}, path)
    return path


_SAID: set[str] = set()  # stale-export warnings already printed by this process


def stale_export(folder: str | Path) -> str | None:
    """Why a study's export (best.json + best_encoder.pt in `folder`) is older than its study's
    best trial, or None: `study run` records the best trial in study.json each time it ends, so a
    study continued after `study best` shows here, without opening its storage."""
    try:
        best = json.loads((Path(folder) / BEST_FILE).read_text())
        now = json.loads((Path(folder) / STUDY_FILE).read_text())
    except (OSError, ValueError):
        return None  # not a study export, or no summary yet: nothing to compare
    exported, current = best.get("trial"), now.get("best_trial")
    if exported is None or current is None or exported == current:
        return None
    return (f"{folder}: the exported encoder is trial {exported}'s, but study {now.get('study')} has a "
            f"better trial since ({current}); re-export with `aecls study best {now.get('study')}`")


def load_encoder(path: str | Path) -> tuple[nn.Module, NetConfig, str]:
    """(encoder with pretrained weights, its NetConfig, the family it came from: cae/dae/vae/...).
    A study export older than its study's best trial is used, with a line saying so."""
    path = Path(path)
    if path.is_dir():
        _check_export_folder(path)
        path = path / ENCODER_FILE
    if path.name == ENCODER_FILE and (why := stale_export(path.parent)) and why not in _SAID:
        _SAID.add(why)  # once a process: a sweep loads the encoder again for every run
        print(f"aecls: warning: {why}", file=sys.stderr)
    if not path.is_file():
        raise AeclsError(f"encoder not found: {path} (give best_encoder.pt, its folder, "
                         "or an autoencoder checkpoint)")
    if path.suffix == ".ckpt":
        return _from_checkpoint(path)
    try:
        blob: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
        net = NetConfig(**blob["net"]).validate()
        encoder = build_encoder(net, out_mult=code_halves(blob["model"]))
        encoder.load_state_dict(blob["state_dict"])
    except (KeyError, TypeError, RuntimeError, EOFError, ValueError) as e:
        raise AeclsError(f"{path} is not an aecls encoder export ({type(e).__name__}: {e})") from e
    except Exception as e:  # torch's unpickler raises its own types for non-checkpoint files
        raise AeclsError(f"{path} is not readable as an encoder export ({type(e).__name__})") from e
    return encoder, net, blob["model"]


def _check_export_folder(folder: Path) -> None:
    """A folder given as an encoder must hold a study export; say what to do for the two folders a
    user gives by mistake: a study's folder before `study best` ran, and a training run's."""
    if (folder / ENCODER_FILE).is_file():
        return
    checkpoints = sorted(folder.rglob("*.ckpt"))
    if checkpoints:
        named = ", ".join(str(c) for c in checkpoints[:3]) + (" ..." if len(checkpoints) > 3 else "")
        raise AeclsError(f"{folder} is a training run, not an encoder export: give its checkpoint "
                         f"({named})")
    try:
        study = json.loads((folder / STUDY_FILE).read_text()).get("study") or folder.name
    except (OSError, ValueError):
        study = folder.name
    raise AeclsError(f"no {ENCODER_FILE} in {folder}: `aecls study best {study}` exports the best "
                     "trial's encoder there (or give best_encoder.pt or an autoencoder checkpoint)")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict, loaded without unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise AeclsError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a file that is not a checkpoint
        raise AeclsError(f"{path} is not a readable aecls checkpoint ({type(e).__name__}: {e})") from e


def _from_checkpoint(path: Path) -> tuple[nn.Module, NetConfig, str]:
    """The encoder of an autoencoder or pretext checkpoint (a family whose encoder transfers), in
    train mode: a fine-tuned encoder trains its BatchNorm and dropout like a freshly built one (the
    frozen mode sets eval)."""
    ckpt = read_checkpoint(path)
    state = ckpt.get("state_dict", {})
    kind = ckpt.get("aecls_model")
    family = checkpoint_family(ckpt)
    if family is None or not family.has_encoder:
        raise AeclsError(f"{path} is not an autoencoder or pretext checkpoint "
                         f"(it is a {kind or 'non-aecls'} one)")
    try:
        net = NetConfig(**ckpt["hyper_parameters"]["net"]).validate()
        encoder = build_encoder(net, out_mult=family.code_halves)
        encoder.load_state_dict({k.removeprefix("encoder."): v for k, v in state.items()
                                 if k.startswith("encoder.")})
    except (KeyError, TypeError, RuntimeError) as e:
        raise AeclsError(f"{path}: checkpoint does not match its {kind} encoder ({e})") from e
    return encoder.train(), net, family.name
