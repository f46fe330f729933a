"""Pretrained encoders for the classifier: from a study export (best_encoder.pt, or its folder)
or from any aecls autoencoder checkpoint. Everything is loaded with weights_only=True."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aecls.errors import AeclsError
from aecls.nets import NetConfig, build_encoder

ENCODER_FILE = "best_encoder.pt"


def export_encoder(path: str | Path, encoder: nn.Module, net: NetConfig, model: str) -> Path:
    """Save an encoder's weights with the config that rebuilds it (plain types only)."""
    path = Path(path)
    torch.save({"state_dict": encoder.state_dict(), "net": asdict(net), "model": model}, path)
    return path


def load_encoder(path: str | Path) -> tuple[nn.Module, NetConfig, str]:
    """(encoder with pretrained weights, its NetConfig, the model it came from: cae/dae/vae/...)."""
    path = Path(path)
    if path.is_dir():
        path = path / ENCODER_FILE
    if not path.is_file():
        raise AeclsError(f"encoder not found: {path} (give best_encoder.pt, its folder, "
                         "or an autoencoder checkpoint)")
    if path.suffix == ".ckpt":
        from aecls.checkpoints import load_module
        from aecls.modules import VAE

        module, _ = load_module(path)
        if not hasattr(module, "decoder"):
            raise AeclsError(f"{path} is not an autoencoder checkpoint (it is a {type(module).__name__})")
        # load_module returns the model in eval mode; a fine-tuned encoder must train its
        # BatchNorm and dropout like a freshly built one (the frozen mode sets eval itself).
        return module.encoder.train(), module.net_cfg, "vae" if isinstance(module, VAE) else "ae"
    try:
        blob: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
        net = NetConfig(**blob["net"]).validate()
        encoder = build_encoder(net, out_mult=2 if blob["model"] == "vae" else 1)
        encoder.load_state_dict(blob["state_dict"])
    except (KeyError, TypeError, RuntimeError, EOFError, ValueError) as e:
        raise AeclsError(f"{path} is not an aecls encoder export ({type(e).__name__}: {e})") from e
    except Exception as e:  # torch's unpickler raises its own types for non-checkpoint files
        raise AeclsError(f"{path} is not readable as an encoder export ({type(e).__name__})") from e
    return encoder, net, blob["model"]
