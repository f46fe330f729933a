"""LightningModules that train the nets in aecls.nets, one file per model family; each file
registers its families (aecls.modules.registry)."""

from aecls.modules.autoencoder import AutoEncoder
from aecls.modules.base import BaseModule
from aecls.modules.classifier import Classifier
from aecls.modules.contrastive import SimCLR
from aecls.modules.optim import OptimConfig
from aecls.modules.registry import Family, families, family
from aecls.modules.semisupervised import FixMatch
from aecls.modules.vae import VAE

__all__ = ["VAE", "AutoEncoder", "BaseModule", "Classifier", "Family", "FixMatch", "OptimConfig", "SimCLR",
           "families", "family"]
