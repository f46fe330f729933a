"""SimCLR: a contrastive pretext on the same encoder nets as the autoencoders (and `TwoViews`, what
every two-view pretext shares: the views, the encoder and head, the grid).

Two augmented views of each image (aecls.data.transforms.contrastive_view, seeded, on the device)
go through the encoder and a projection head; NT-Xent pulls each view towards its partner and
away from the other 2B - 2 views of the batch. The encoder (not the head) is what transfers: it is
exported in the same best_encoder.pt format as an autoencoder's, so the probe, the sweep and the
classifier take it unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from aecls.core.constants import PROBE_METRIC
from aecls.core.errors import check
from aecls.data.transforms import contrastive_view, step_generator
from aecls.modules.base import BaseModule
from aecls.modules.optim import OptimConfig
from aecls.modules.registry import Family, register
from aecls.nets import NetConfig, build_encoder

EVAL_VIEW_SEED = 4321  # validation views are the same every epoch and run, so val/loss is comparable


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent (SimCLR's normalised temperature-scaled cross-entropy), mean over the 2B views.

    z1, z2: (B, D) projections of the two views of the same B images; row i of z1 and of z2 are a
    positive pair, every other row of either is a negative. Returns a scalar.
    """
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2B, D)
    sim = z @ z.T / temperature  # (2B, 2B) cosine similarities / t
    sim.fill_diagonal_(float("-inf"))  # a view is not its own negative
    b = z1.shape[0]
    partner = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)  # (2B,)
    return F.cross_entropy(sim, partner)


class TwoViews(BaseModule):
    """A pretext on two augmented views of each image: encoder -> projection head (`head`) ->
    `loss(p1, p2)` of the two views' projections. The encoder's code is what transfers.

    Subclasses give `head(latent_dim)` and `loss`, and pass their hyper-parameters (`seed` among
    them: it seeds the training views with the step) to `__init__`.
    """

    def __init__(self, net: NetConfig | None, optim: OptimConfig | None, **hparams) -> None:
        super().__init__(net, optim)
        self.save_config(**hparams)
        self.encoder = build_encoder(self.net_cfg)
        self.projector = self.head(self.net_cfg.latent_dim)

    def head(self, latent_dim: int) -> nn.Module:
        raise NotImplementedError

    def loss(self, p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
        """Scalar loss of the (B, D) projections of the two views of the same B images."""
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(self.encoder(x))

    def views(self, x: torch.Tensor, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Two views of each image: seeded by (seed, step) in training, fixed for evaluation."""
        if stage == "train":
            g = step_generator(x.device, self.hparams.seed, self.global_step)
        else:
            g = torch.Generator(device=x.device).manual_seed(EVAL_VIEW_SEED)
        return contrastive_view(x, g), contrastive_view(x, g)

    def compute(self, batch, stage: str) -> dict[str, torch.Tensor]:
        v1, v2 = self.views(batch[0], stage)
        return {"loss": self.loss(self(v1), self(v2))}

    def image_rows(self, x: torch.Tensor) -> list[torch.Tensor]:
        v1, v2 = self.views(x, "val")
        return [x, v1, v2]  # the augmentation grid in TensorBoard: images and their two views


class SimCLR(TwoViews):
    """SimCLR: two views of an image pulled together, every other image pushed away (NT-Xent).

    Args:
        net: encoder architecture (conv or cnn; its code is what transfers).
        optim: optimiser and schedule.
        temperature: NT-Xent temperature.
        proj_dim: output size of the projection head (hidden width = the code size).
        seed: seeds the training views (with the step) and nothing else.
    """

    def __init__(self, net: NetConfig | None = None, optim: OptimConfig | None = None,
                 temperature: float = 0.2, proj_dim: int = 64, seed: int = 0) -> None:
        check(temperature > 0, f"temperature must be > 0, got {temperature}")
        check(proj_dim >= 1, f"proj_dim must be >= 1, got {proj_dim}")
        super().__init__(net, optim, temperature=temperature, proj_dim=proj_dim, seed=seed)

    def head(self, latent_dim: int) -> nn.Module:
        return nn.Sequential(nn.Linear(latent_dim, latent_dim), nn.ReLU(),
                             nn.Linear(latent_dim, self.hparams.proj_dim))

    def loss(self, p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
        return nt_xent(p1, p2, self.hparams.temperature)

# A pretext is for its code: a study compares the linear probe of it (the NT-Xent value changes
# with the temperature).
register(Family("simclr", SimCLR, "pretext",
                score=PROBE_METRIC, maximize=True, loss_keys={"temperature"}))
