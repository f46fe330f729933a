"""aecls: autoencoders and transfer learning on Fashion-MNIST, with Optuna search."""

from aecls.core.errors import AeclsError, DataError

__all__ = ["AeclsError", "DataError"]
__version__ = "0.1.0"
