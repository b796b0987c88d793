"""npnet: neural networks from scratch in NumPy, trained from YAML configs.

Importing the package imports every component module, which registers each layer, loss,
initializer, optimizer, schedule and dataset under its name: once `npnet` is imported, every
name a config can use exists.
"""

__version__ = "0.1.0"

from npnet import data, nn, optim

__all__ = ["__version__", "data", "nn", "optim"]
