"""Batch normalization: standardize each channel over the batch, then let the network rescale."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from npnet.nn.layer import Layer, Shape
from npnet.registry import LAYERS
from npnet.validate import number


@LAYERS.register("batch_norm")
class BatchNorm(Layer):
    """y = γ·x̂ + β with x̂ = (x − μ) / √(σ² + ε), per channel, with PyTorch's conventions.

    Flat input (N, D) is normalized per feature (BatchNorm1d); images (N, C, H, W) per channel
    over the batch and every pixel (BatchNorm2d); in general channel axis 1, statistics over all
    the other axes. Training uses the batch's mean μ and biased variance σ², and updates the
    running statistics r ← (1 − momentum)·r + momentum·batch, the variance's with the unbiased
    batch variance (m/(m − 1))·σ², m = values per channel. Evaluation (training=False)
    normalizes with the running statistics instead, so one sample's output does not depend on
    the rest of its batch. Params "gamma" (1s) and "beta" (0s), (C,); the running statistics
    are `buffers` ("running_mean" 0s, "running_var" 1s, (C,)), saved with a checkpoint but
    never trained.

    Every sum over the batch goes through `self.batch_sum`: the identity here; when the batch
    runs in slices on several threads (npnet.nn.parallel), the sum over all the slices, so
    the statistics are still the whole batch's. `self.grads` holds this slice's share.
    """

    mixes_batch = True

    def __init__(self, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum = number("momentum", momentum, low=0.0, high=1.0)
        self.eps = number("eps", eps, low=0.0, low_open=True)
        self.buffers: dict[str, np.ndarray] = {}
        self.batch_sum: Callable[[Any], Any] = whole_batch
        self.updates_running_statistics = True  # only one slice of a batch does

    def parameter_count(self, in_shape: Shape) -> int:
        return 4 * in_shape[0]  # gamma, beta, running mean and variance, one per channel

    def build(self, in_shape: Shape, rng: np.random.Generator, dtype: np.dtype) -> Shape:
        out_shape = super().build(in_shape, rng, dtype)
        channels = self.in_shape[0]
        self.params = {
            "gamma": np.ones(channels, dtype=dtype),
            "beta": np.zeros(channels, dtype=dtype),
        }
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self.buffers = {
            "running_mean": np.zeros(channels, dtype=dtype),
            "running_var": np.ones(channels, dtype=dtype),
        }
        return out_shape

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        # Per-channel (C,) arrays broadcast against x as (C, 1, 1, ...); axes = all but channel.
        self.axes = (0, *range(2, x.ndim))
        self.channel_shape = (x.shape[1],) + (1,) * (x.ndim - 2)
        self.training = training
        if training:
            # m, the values behind each channel's statistics
            self.count = self.batch_sum(x.size // x.shape[1])
            if self.count < 2:
                raise ValueError(
                    f"batch_norm needs more than one value per channel to train, got input of "
                    f"shape {x.shape}; use a batch size above 1"
                )
            mean = self.batch_sum(x.sum(axis=self.axes)) / self.count
            x_hat = x - mean.reshape(self.channel_shape)
            var = self.batch_sum(np.square(x_hat).sum(axis=self.axes)) / self.count
            if self.updates_running_statistics:
                self.update_running_statistics(mean, var)
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
            x_hat = x - mean.reshape(self.channel_shape)
        self.inv_std = 1.0 / np.sqrt(var + self.eps)
        x_hat *= self.inv_std.reshape(self.channel_shape)
        self.x_hat = x_hat
        out = x_hat * self.params["gamma"].reshape(self.channel_shape)
        out += self.params["beta"].reshape(self.channel_shape)
        return out

    def update_running_statistics(self, mean: np.ndarray, var: np.ndarray) -> None:
        """r ← (1 − momentum)·r + momentum·batch; the variance unbiased, as PyTorch keeps it."""
        unbiased = var * (self.count / (self.count - 1))
        for name, batch in (("running_mean", mean), ("running_var", unbiased)):
            running = self.buffers[name]
            running *= 1.0 - self.momentum
            running += self.momentum * batch

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        """dβ = Σ g, dγ = Σ g·x̂ (sums over all but the channel axis); in training
        dx = γ/√(σ² + ε) · (g − dβ/m − x̂·dγ/m), because μ and σ² depend on every x in the batch;
        in evaluation they are constants and dx = γ/√(σ² + ε) · g."""
        g_x_hat = grad_out * self.x_hat
        d_gamma = g_x_hat.sum(axis=self.axes)
        d_beta = grad_out.sum(axis=self.axes)
        self.grads = {"gamma": d_gamma, "beta": d_beta}
        if not self.input_grad:
            return None
        per_channel = self.channel_shape
        scale = (self.params["gamma"] * self.inv_std).reshape(per_channel)
        if not self.training:
            return grad_out * scale
        # dx needs the sums over the whole batch; the sums of several slices in one exchange
        m = self.count
        d_gamma, d_beta = self.batch_sum(np.stack([d_gamma, d_beta]))
        # g·x̂ has been summed; its buffer becomes dx.
        dx = np.multiply(self.x_hat, (-d_gamma / m).reshape(per_channel), out=g_x_hat)
        dx += grad_out
        dx -= (d_beta / m).reshape(per_channel)
        dx *= scale
        return dx


def whole_batch(total: Any) -> Any:
    """A sum over the batch when the layer sees all of it: already complete."""
    return total
