"""NetConfig, the typed architecture of an encoder/decoder pair, and the builders of its nets."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from aecls.core.errors import check
from aecls.nets.cnn import CNNDecoder, SupervisedCNN
from aecls.nets.conv import ConvDecoder, ConvEncoder
from aecls.nets.mlp import MLPDecoder, MLPEncoder

ARCHS = ("conv", "mlp", "cnn")


@dataclass
class NetConfig:
    """Architecture of an encoder/decoder pair.

    Args:
        arch: "conv" (the CAE), "mlp", or "cnn" (the supervised baseline's
            feature extractor, with a mirrored upsampling decoder; its code passes a ReLU, so
            the VAE refuses it).
        latent_dim: size of the code z.
        n_channels: conv width c (layers c, 2c, 4c); conv and cnn.
        hidden: FC layer between the conv features and z (0 = none); conv only.
        batch_norm: BatchNorm after each conv; conv only.
        mlp_widths: hidden widths of the MLP encoder (the decoder mirrors them); mlp only.
        dropout: dropout rate of the cnn blocks and of a classifier's head input.
    """

    arch: str = "conv"
    latent_dim: int = 16
    n_channels: int = 16
    hidden: int = 64
    batch_norm: bool = False
    mlp_widths: list[int] = field(default_factory=lambda: [256, 32])
    dropout: float = 0.0

    def validate(self) -> NetConfig:
        """Raise AeclsError on a bad value (called by the modules, so the CLI shows one clear line)."""
        check(self.arch in ARCHS, f"net.arch must be one of {list(ARCHS)}, got {self.arch!r}")
        check(0 <= self.dropout < 1, f"net.dropout must be in [0, 1), got {self.dropout}")
        check(self.latent_dim >= 1, f"net.latent_dim must be >= 1, got {self.latent_dim}")
        check(self.n_channels >= 1, f"net.n_channels must be >= 1, got {self.n_channels}")
        check(self.hidden >= 0, f"net.hidden must be >= 0, got {self.hidden}")
        check(all(w >= 1 for w in self.mlp_widths), f"net.mlp_widths must be positive: {self.mlp_widths}")
        return self


def build_encoder(cfg: NetConfig, out_mult: int = 1) -> nn.Module:
    """Encoder with `out_mult * latent_dim` outputs (2 for a VAE's mean and log-variance)."""
    out = cfg.latent_dim * out_mult
    if cfg.arch == "conv":
        return ConvEncoder(out, cfg.n_channels, cfg.hidden, cfg.batch_norm)
    if cfg.arch == "cnn":
        return SupervisedCNN(out, cfg.n_channels, cfg.dropout)
    return MLPEncoder(out, cfg.mlp_widths)


def build_decoder(cfg: NetConfig) -> nn.Module:
    if cfg.arch == "cnn":
        return CNNDecoder(cfg.latent_dim, cfg.n_channels)
    if cfg.arch == "conv":
        return ConvDecoder(cfg.latent_dim, cfg.n_channels, cfg.hidden, cfg.batch_norm)
    return MLPDecoder(cfg.latent_dim, cfg.mlp_widths)
