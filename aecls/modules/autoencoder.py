"""AutoEncoder LightningModule: the CAE / MLP AE, and the denoising AE when `noise_sigma > 0`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics.functional.image import peak_signal_noise_ratio

from aecls.core.errors import check
from aecls.data.transforms import add_noise
from aecls.modules.base import BaseModule
from aecls.modules.optim import OptimConfig
from aecls.modules.registry import Family, register
from aecls.nets import NetConfig, build_decoder, build_encoder

EVAL_NOISE_SEED = 1234  # val/test noise is the same every epoch and run, so PSNRs are comparable


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over images of each image's PSNR in dB, pixels in [0, 1]."""
    return peak_signal_noise_ratio(pred, target, data_range=1.0, dim=(1, 2, 3))


class AutoEncoder(BaseModule):
    """Reconstructs its input; with `noise_sigma > 0` it sees x + N(0, sigma^2) (clipped to [0, 1])
    and is scored against the clean x, i.e. a denoising autoencoder.

    Args:
        net: encoder/decoder architecture.
        optim: optimiser and schedule.
        loss: "mse" on sigmoid outputs, or "bce" (pixel-wise binary cross-entropy on logits).
        noise_sigma: std of the Gaussian noise added to inputs (0 = plain AE).
    """

    def __init__(self, net: NetConfig | None = None, optim: OptimConfig | None = None,
                 loss: str = "mse", noise_sigma: float = 0.0) -> None:
        super().__init__(net, optim)
        check(loss in ("mse", "bce"), f"loss must be 'mse' or 'bce', got {loss!r}")
        check(noise_sigma >= 0, f"noise_sigma must be >= 0, got {noise_sigma}")
        self.save_config(loss=loss, noise_sigma=noise_sigma)
        self.encoder = build_encoder(self.net_cfg)
        self.decoder = build_decoder(self.net_cfg)
        self._eval_gen: torch.Generator | None = None

    def encode(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 28, 28) -> (B, latent)
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 28, 28) -> (B, 1, 28, 28) in [0, 1]
        return torch.sigmoid(self.decoder(self.encoder(x)))

    def corrupt(self, x: torch.Tensor, stage: str) -> torch.Tensor:
        """Noisy input for the DAE: fresh noise in training, a fixed noise sequence in val/test."""
        if stage == "train":
            return add_noise(x, self.hparams.noise_sigma)
        if self._eval_gen is None:  # first eval batch of this epoch: restart the fixed sequence
            self._eval_gen = torch.Generator(device=x.device).manual_seed(EVAL_NOISE_SEED)
        return add_noise(x, self.hparams.noise_sigma, self._eval_gen)

    def on_validation_epoch_start(self) -> None:
        self._eval_gen = None

    def on_test_epoch_start(self) -> None:
        self._eval_gen = None

    def compute(self, batch, stage: str) -> dict[str, torch.Tensor]:
        x, _ = batch  # (B, 1, 28, 28) in [0, 1]
        x_in = self.corrupt(x, stage)
        logits = self.decoder(self.encoder(x_in))
        recon = torch.sigmoid(logits)
        if self.hparams.loss == "mse":
            loss = F.mse_loss(recon, x)
        else:
            loss = F.binary_cross_entropy_with_logits(logits, x)
        metrics = {"loss": loss}
        if stage != "train":
            metrics["mse"] = F.mse_loss(recon, x)
            metrics["psnr"] = psnr(recon, x)
            metrics["clean_mse"] = metrics["mse"]
            if self.hparams.noise_sigma > 0:
                metrics["psnr_noisy"] = psnr(x_in, x)  # what the DAE starts from
                # What a study compares (Family.score): the same number for every loss and noise
                # level, where `mse` and `loss` grow with the noise a DAE is given.
                metrics["clean_mse"] = F.mse_loss(self(x), x)
        return metrics

    def image_rows(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.hparams.noise_sigma > 0:
            noisy = add_noise(x, self.hparams.noise_sigma)
            return [x, noisy, self(noisy)]  # clean / noisy / denoised
        return [x, self(x)]  # inputs / reconstructions


# A study compares the reconstruction of clean validation images by MSE, whatever loss trains and
# whatever noise the inputs get: val/loss is an MSE or a BCE, on noisy inputs for a DAE.
SCORE = {"score": "val/clean_mse", "loss_keys": {"loss", "noise_sigma"}}
register(Family("cae", AutoEncoder, "autoencoder", **SCORE,
                matches=lambda hp: not hp.get("noise_sigma")))
register(Family("dae", AutoEncoder, "autoencoder", **SCORE,
                matches=lambda hp: bool(hp.get("noise_sigma"))))
