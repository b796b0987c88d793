"""Weight initializers: `init(shape, fan_in, fan_out, rng, dtype) -> array` of that shape.

The layer states its fans, since only it knows which axis is which: a dense W (in, out) has
fan_in = in, fan_out = out; a conv W (F, C, kh, kw) has fan_in = C·kh·kw and
fan_out = F·kh·kw (PyTorch's convention). Scales follow PyTorch's `torch.nn.init`:

    xavier (glorot): Var = 2 / (fan_in + fan_out)        for tanh / sigmoid
    he (kaiming):    Var = 2 / fan_in  (gain √2, fan_in)  for ReLU
    lecun:           Var = 1 / fan_in                     for SELU / linear

A uniform U(-a, a) has variance a²/3, so each uniform variant uses a = √3 · std.
Draws are made directly in `dtype` (float32 or float64), so the same rng gives the same
weights every time, and float32 weights never pass through float64.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from npnet.registry import INITIALIZERS
from npnet.validate import one_of

Shape = tuple[int, ...]


def check_initializer(name: str, value: Any) -> str:
    """`value` when it names a registered initializer, else a ConfigError listing them."""
    return one_of(name, value, INITIALIZERS.names())


def initialize(
    name: str,
    shape: Shape,
    fan_in: int,
    fan_out: int,
    rng: np.random.Generator,
    dtype: np.dtype,
) -> np.ndarray:
    """The array of `shape` drawn by the initializer registered as `name`."""
    return INITIALIZERS.get(name)(shape, fan_in, fan_out, rng, dtype)


def _normal(shape: Shape, std: float, rng: np.random.Generator, dtype: np.dtype) -> np.ndarray:
    """N(0, std²) entries."""
    out = rng.standard_normal(shape, dtype=dtype)
    out *= std
    return out


def _uniform(shape: Shape, limit: float, rng: np.random.Generator, dtype: np.dtype) -> np.ndarray:
    """U(-limit, limit) entries."""
    out = rng.random(shape, dtype=dtype)
    out *= 2 * limit
    out -= limit
    return out


@INITIALIZERS.register("zeros")
def zeros(shape, fan_in, fan_out, rng, dtype) -> np.ndarray:
    """All 0 (biases; a weight matrix of zeros never breaks its symmetry)."""
    return np.zeros(shape, dtype=dtype)


@INITIALIZERS.register("normal")
def normal(shape, fan_in, fan_out, rng, dtype) -> np.ndarray:
    """N(0, 0.01²), whatever the fans."""
    return _normal(shape, 0.01, rng, dtype)


@INITIALIZERS.register("uniform")
def uniform(shape, fan_in, fan_out, rng, dtype) -> np.ndarray:
    """U(-0.05, 0.05), whatever the fans."""
    return _uniform(shape, 0.05, rng, dtype)


@INITIALIZERS.register("xavier_uniform")
def xavier_uniform(shape, fan_in, fan_out, rng, dtype) -> np.ndarray:
    """Glorot: U(-a, a), a = √(6 / (fan_in + fan_out))."""
    return _uniform(shape, math.sqrt(6 / (fan_in + fan_out)), rng, dtype)


@INITIALIZERS.register("xavier_normal")
def xavier_normal(shape, fan_in, fan_out, rng, dtype) -> np.ndarray:
    """Glorot: N(0, σ²), σ = √(2 / (fan_in + fan_out))."""
    return _normal(shape, math.sqrt(2 / (fan_in + fan_out)), rng, dtype)


@INITIALIZERS.register("he_uniform")
def he_uniform(shape, fan_in, fan_out, rng, dtype) -> np.ndarray:
    """Kaiming for ReLU: U(-a, a), a = √2 · √(3 / fan_in) = √(6 / fan_in)."""
    return _uniform(shape, math.sqrt(6 / fan_in), rng, dtype)


@INITIALIZERS.register("he_normal")
def he_normal(shape, fan_in, fan_out, rng, dtype) -> np.ndarray:
    """Kaiming for ReLU: N(0, σ²), σ = √2 / √fan_in."""
    return _normal(shape, math.sqrt(2 / fan_in), rng, dtype)


@INITIALIZERS.register("lecun_uniform")
def lecun_uniform(shape, fan_in, fan_out, rng, dtype) -> np.ndarray:
    """LeCun: U(-a, a), a = √(3 / fan_in)."""
    return _uniform(shape, math.sqrt(3 / fan_in), rng, dtype)


@INITIALIZERS.register("lecun_normal")
def lecun_normal(shape, fan_in, fan_out, rng, dtype) -> np.ndarray:
    """LeCun: N(0, σ²), σ = 1 / √fan_in (not truncated)."""
    return _normal(shape, math.sqrt(1 / fan_in), rng, dtype)
