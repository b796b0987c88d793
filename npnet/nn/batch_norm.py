"""Batch normalization: standardize each channel over the batch, then let the network rescale."""

from __future__ import annotations

import numpy as np

from npnet.functional.normalization import (
    BatchSum,
    batch_norm_backward,
    batch_norm_forward,
    batch_norm_inference,
    whole_batch,
)
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

    The math is `npnet.functional.normalization`; every sum over the batch goes through
    `self.batch_sum`: the identity here; when the batch runs in slices on several threads
    (npnet.nn.parallel), the sum over all the slices, so the statistics are still the whole
    batch's. `self.grads` holds this slice's share.
    """

    mixes_batch = True

    def __init__(self, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum = number("momentum", momentum, low=0.0, high=1.0)
        self.eps = number("eps", eps, low=0.0, low_open=True)
        self.buffers: dict[str, np.ndarray] = {}
        self.batch_sum: BatchSum = whole_batch
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
        gamma, beta = self.params["gamma"], self.params["beta"]
        if not training:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
            out, self.cache = batch_norm_inference(x, gamma, beta, mean, var, self.eps)
            return out
        out, self.cache = batch_norm_forward(x, gamma, beta, self.eps, self.batch_sum)
        if self.updates_running_statistics:
            self.update_running_statistics(self.cache.mean, self.cache.var, self.cache.count)
        return out

    def update_running_statistics(self, mean: np.ndarray, var: np.ndarray, count: int) -> None:
        """r ← (1 − momentum)·r + momentum·batch; the variance unbiased (m/(m − 1))·σ², as
        PyTorch keeps it."""
        unbiased = var * (count / (count - 1))
        for name, batch in (("running_mean", mean), ("running_var", unbiased)):
            running = self.buffers[name]
            running *= 1.0 - self.momentum
            running += self.momentum * batch

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        """`functional.batch_norm_backward`: dβ = Σ g, dγ = Σ g·x̂, and dx through the batch's
        statistics (in training) or with them as constants (in evaluation)."""
        dx, d_gamma, d_beta = batch_norm_backward(
            grad_out, self.cache, self.params["gamma"], self.batch_sum, input_grad=self.input_grad
        )
        self.grads = {"gamma": d_gamma, "beta": d_beta}
        return dx
