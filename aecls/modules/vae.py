"""Variational autoencoder: diagonal-Gaussian encoder, Bernoulli decoder, closed-form KL to N(0, I).

All quantities are in nats per image. The Bernoulli likelihood is applied to grey levels in [0, 1]
(cross-entropy), and the independent-pixel baseline in `aecls.evaluation.baselines` uses the same likelihood.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from aecls.core.errors import check
from aecls.modules.base import BaseModule
from aecls.modules.optim import OptimConfig
from aecls.modules.registry import Family, register
from aecls.nets import NetConfig, build_decoder, build_encoder


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per sample, (B, D) -> (B,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x | logits) summed over pixels, (B, 1, 28, 28) -> (B,)."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def gaussian_log_prob(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over dimensions, (B, D) -> (B,)."""
    return -0.5 * (((z - mu) ** 2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(dim=1)


class VAE(BaseModule):
    """A variational autoencoder: reparameterised Gaussian codes, Bernoulli pixels, KL to N(0, I).

    Args:
        net: encoder/decoder architecture (the encoder outputs 2 * latent_dim: mean, log-variance).
        optim: optimiser and schedule.
        beta: weight of the KL term in the training loss (1 = the ELBO).
        kl_warmup_epochs: ramp the KL weight linearly from 1/n to `beta` over this many epochs.
        nll_samples: importance samples k for the test NLL bound (IWAE, k >= 100 is tight enough).
    """

    test_settings = ("nll_samples",)

    def __init__(self, net: NetConfig | None = None, optim: OptimConfig | None = None,
                 beta: float = 1.0, kl_warmup_epochs: int = 0, nll_samples: int = 100) -> None:
        super().__init__(net, optim)
        check(self.net_cfg.arch != "cnn", "the VAE needs an unconstrained (mean, log-variance) code: "
              "net.arch 'cnn' ends in a ReLU; use conv or mlp")
        check(beta >= 0, f"beta must be >= 0, got {beta}")
        check(kl_warmup_epochs >= 0, f"kl_warmup_epochs must be >= 0, got {kl_warmup_epochs}")
        check(nll_samples >= 1, f"nll_samples must be >= 1, got {nll_samples}")
        self.save_config(beta=beta, kl_warmup_epochs=kl_warmup_epochs, nll_samples=nll_samples)
        self.encoder = build_encoder(self.net_cfg, out_mult=2)
        self.decoder = build_decoder(self.net_cfg)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, 28, 28) -> mean, log-variance, each (B, latent)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # reconstruction from the mean code, in [0, 1]
        return torch.sigmoid(self.decoder(self.encode(x)[0]))

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """n images from the prior: z ~ N(0, I) -> Bernoulli means, (n, 1, 28, 28)."""
        z = torch.randn(n, self.net_cfg.latent_dim, device=self.device)
        return torch.sigmoid(self.decoder(z))

    def schedule_epochs(self) -> dict[str, int]:
        return {"kl_warmup_epochs": self.hparams.kl_warmup_epochs}

    def kl_weight(self, stage: str) -> float:
        warm = self.hparams.kl_warmup_epochs
        if stage != "train" or warm == 0:
            return self.hparams.beta
        return self.hparams.beta * min(1.0, (self.current_epoch + 1) / warm)

    def compute(self, batch, stage: str) -> dict[str, torch.Tensor]:
        x, _ = batch
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()  # reparameterised sample, (B, latent)
        rec = bernoulli_nll(self.decoder(z), x)  # (B,)
        kl = kl_to_standard_normal(mu, logvar)  # (B,)
        loss = (rec + self.kl_weight(stage) * kl).mean()
        metrics = {"loss": loss, "elbo": -(rec + kl).mean(), "recon": rec.mean(), "kl": kl.mean()}
        if stage == "test":
            metrics["nll"] = self.iw_nll(x, mu, logvar).mean()
            # the reconstruction from the mean code, as the autoencoders' (the report reads it)
            metrics["clean_mse"] = F.mse_loss(self(x), x)
        return metrics

    @torch.no_grad()
    def iw_nll(self, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Importance-weighted upper bound on -log p(x) with k = nll_samples (Burda et al.), (B,).

        Samples are drawn one at a time so memory stays that of one batch.
        """
        k = self.hparams.nll_samples
        log_w = []
        for _ in range(k):
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
            log_pxz = -bernoulli_nll(self.decoder(z), x)
            log_pz = gaussian_log_prob(z, torch.zeros_like(z), torch.zeros_like(z))
            log_w.append(log_pxz + log_pz - gaussian_log_prob(z, mu, logvar))
        return -(torch.logsumexp(torch.stack(log_w, dim=1), dim=1) - math.log(k))

    def image_rows(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x, self(x), self.sample(len(x))]  # inputs / reconstructions / prior samples

    def test_cost(self) -> str | None:
        k = self.hparams.nll_samples
        return (f"test/nll: {k} importance samples per test image, {k} decoder passes each (minutes on "
                "a CPU at 100); nll_samples sets it (lower is faster and a looser bound)") if k > 1 else None


# The encoder gives (mean, log-variance): its mean is the code. A study compares the ELBO (beta 1,
# the same bound for every beta), not the beta-weighted loss that trains.
register(Family("vae", VAE, "autoencoder", code_halves=2,
                score="val/elbo", maximize=True, loss_keys={"beta"}))
