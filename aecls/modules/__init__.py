"""LightningModules that train the nets in aecls.nets."""

from aecls.modules.autoencoder import AutoEncoder
from aecls.modules.base import BaseModule
from aecls.modules.classifier import Classifier
from aecls.modules.contrastive import SimCLR
from aecls.modules.optim import OptimConfig
from aecls.modules.vae import VAE

# Classes `aecls test --ckpt` can rebuild from a checkpoint (see BaseModule.on_save_checkpoint).
MODULES = {cls.__name__: cls for cls in (AutoEncoder, VAE, SimCLR, Classifier)}

__all__ = ["MODULES", "VAE", "AutoEncoder", "BaseModule", "Classifier", "OptimConfig", "SimCLR"]
