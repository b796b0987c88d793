"""Layers, activations, losses, initializers and the Network that stacks them."""

from npnet.nn import activations, batch_norm, conv, dense, dropout, init, losses, pooling, reshape
from npnet.nn.layer import Layer
from npnet.nn.loss import Loss
from npnet.nn.network import Network

__all__ = [
    "Layer",
    "Loss",
    "Network",
    "activations",
    "batch_norm",
    "conv",
    "dense",
    "dropout",
    "init",
    "losses",
    "pooling",
    "reshape",
]
