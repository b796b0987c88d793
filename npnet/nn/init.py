"""Weight initializers: `initialize(spec, shape, fan_in, fan_out, rng, dtype) -> array`.

A spec is a registered name (`he_normal`) or a mapping with the name and its parameters
(`{name: normal, std: 1.0}`, `{name: he_uniform, nonlinearity: tanh}`). Each initializer is
a small class: its constructor checks the parameters once, when the config is loaded, and
calling it draws an array.

The layer states its fans, since only it knows which axis is which: a dense W (in, out) has
fan_in = in, fan_out = out; a conv W (F, C, kh, kw) has fan_in = C·kh·kw and
fan_out = F·kh·kw (PyTorch's convention). Scales follow PyTorch's `torch.nn.init`:

    xavier (glorot): std = gain·√(2 / (fan_in + fan_out))     for tanh / sigmoid
    he (kaiming):    std = gain / √fan   (gain √2 for ReLU)    fan = fan_in or fan_out
    lecun:           std = 1 / √fan_in                          for SELU / linear

A uniform U(-a, a) has variance a²/3, so each uniform variant uses a = √3 · std.
Draws are made directly in `dtype` (float32 or float64), so the same rng gives the same
weights every time, and float32 weights never pass through float64.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from npnet.errors import ConfigError
from npnet.registry import INITIALIZERS
from npnet.validate import number, one_of

Shape = tuple[int, ...]

# torch.nn.init.calculate_gain: the factor that keeps the activations' variance across a
# layer followed by this nonlinearity (leaky_relu's depends on its slope `a`).
GAINS = {
    "linear": 1.0,
    "conv2d": 1.0,
    "sigmoid": 1.0,
    "tanh": 5 / 3,
    "relu": math.sqrt(2.0),
    "leaky_relu": None,
    "selu": 3 / 4,
}
MODES = ["fan_in", "fan_out"]


def gain(nonlinearity: str, a: float = 0.0) -> float:
    """PyTorch's `calculate_gain(nonlinearity, a)`: √(2 / (1 + a²)) for leaky_relu."""
    if nonlinearity == "leaky_relu":
        return math.sqrt(2.0 / (1 + a * a))
    return GAINS[nonlinearity]


class Initializer:
    """Base: parameters are stored under their own names (the `get_config` convention)."""

    def __call__(self, shape, fan_in, fan_out, rng, dtype) -> np.ndarray:
        raise NotImplementedError


def build_initializer(spec: Any, key: str = "init") -> Initializer:
    """The initializer a spec names, constructed (so its parameters are checked); errors
    name the config key (`init`, `bias_init`) they are about."""
    if isinstance(spec, dict):
        if "name" not in spec:
            raise ConfigError(
                f"'{key}' needs a 'name' in its mapping "
                f"(choices: {', '.join(INITIALIZERS.names())})"
            )
        name, args = spec["name"], {k: v for k, v in spec.items() if k != "name"}
    else:
        name, args = spec, {}
    one_of(key, name, INITIALIZERS.names())
    try:
        return INITIALIZERS.build(name, args)
    except ConfigError as error:
        raise ConfigError(f"'{key}' ({name}): {error}") from None


def check_initializer(key: str, spec: Any) -> Any:
    """`spec` when it is a valid initializer spec, else a ConfigError naming `key`."""
    build_initializer(spec, key)
    return spec


def initialize(
    spec: Any,
    shape: Shape,
    fan_in: int,
    fan_out: int,
    rng: np.random.Generator,
    dtype: np.dtype,
) -> np.ndarray:
    """The array of `shape` drawn by the initializer `spec` names."""
    return build_initializer(spec)(shape, fan_in, fan_out, rng, dtype)


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
class Zeros(Initializer):
    """All 0 (biases; a weight matrix of zeros never breaks its symmetry)."""

    def __call__(self, shape, fan_in, fan_out, rng, dtype) -> np.ndarray:
        return np.zeros(shape, dtype=dtype)


@INITIALIZERS.register("constant")
class Constant(Initializer):
    """Every entry `value` (PyTorch's constant_), e.g. a small positive bias before a ReLU."""

    def __init__(self, value: float = 0.0):
        self.value = number("value", value)

    def __call__(self, shape, fan_in, fan_out, rng, dtype) -> np.ndarray:
        return np.full(shape, self.value, dtype=dtype)


@INITIALIZERS.register("normal")
class Normal(Initializer):
    """N(mean, std²), whatever the fans (PyTorch's normal_; npnet's default std is 0.01)."""

    def __init__(self, std: float = 0.01, mean: float = 0.0):
        self.std = number("std", std, low=0)
        self.mean = number("mean", mean)

    def __call__(self, shape, fan_in, fan_out, rng, dtype) -> np.ndarray:
        out = _normal(shape, self.std, rng, dtype)
        if self.mean:
            out += np.asarray(self.mean, dtype=dtype)
        return out


@INITIALIZERS.register("uniform")
class Uniform(Initializer):
    """U(-limit, limit), whatever the fans (PyTorch's uniform_(-limit, limit))."""

    def __init__(self, limit: float = 0.05):
        self.limit = number("limit", limit, low=0)

    def __call__(self, shape, fan_in, fan_out, rng, dtype) -> np.ndarray:
        return _uniform(shape, self.limit, rng, dtype)


@INITIALIZERS.register("xavier_uniform")
class XavierUniform(Initializer):
    """Glorot: U(-a, a), a = gain·√(6 / (fan_in + fan_out)) (PyTorch's xavier_uniform_)."""

    def __init__(self, gain: float = 1.0):
        self.gain = number("gain", gain, low=0)

    def __call__(self, shape, fan_in, fan_out, rng, dtype) -> np.ndarray:
        return _uniform(shape, self.gain * math.sqrt(6 / (fan_in + fan_out)), rng, dtype)


@INITIALIZERS.register("xavier_normal")
class XavierNormal(Initializer):
    """Glorot: N(0, σ²), σ = gain·√(2 / (fan_in + fan_out)) (PyTorch's xavier_normal_)."""

    def __init__(self, gain: float = 1.0):
        self.gain = number("gain", gain, low=0)

    def __call__(self, shape, fan_in, fan_out, rng, dtype) -> np.ndarray:
        return _normal(shape, self.gain * math.sqrt(2 / (fan_in + fan_out)), rng, dtype)


class Kaiming(Initializer):
    """He et al. 2015: σ = gain(nonlinearity, a) / √fan, fan = fan_in or fan_out by `mode`.

    PyTorch's defaults (leaky_relu with a = 0, fan_in) give the ReLU gain √2."""

    def __init__(self, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
        self.a = number("a", a, low=0)
        self.mode = one_of("mode", mode, MODES)
        self.nonlinearity = one_of("nonlinearity", nonlinearity, list(GAINS))

    def std(self, fan_in: int, fan_out: int) -> float:
        fan = fan_in if self.mode == "fan_in" else fan_out
        return gain(self.nonlinearity, self.a) / math.sqrt(fan)


@INITIALIZERS.register("he_uniform")
class HeUniform(Kaiming):
    """Kaiming: U(-b, b), b = √3·gain / √fan; ReLU: √(6 / fan_in) (PyTorch's kaiming_uniform_)."""

    def __call__(self, shape, fan_in, fan_out, rng, dtype) -> np.ndarray:
        return _uniform(shape, math.sqrt(3) * self.std(fan_in, fan_out), rng, dtype)


@INITIALIZERS.register("he_normal")
class HeNormal(Kaiming):
    """Kaiming: N(0, σ²), σ = gain / √fan; ReLU: √2 / √fan_in (PyTorch's kaiming_normal_)."""

    def __call__(self, shape, fan_in, fan_out, rng, dtype) -> np.ndarray:
        return _normal(shape, self.std(fan_in, fan_out), rng, dtype)


@INITIALIZERS.register("lecun_uniform")
class LecunUniform(Initializer):
    """LeCun: U(-a, a), a = √(3 / fan_in)."""

    def __call__(self, shape, fan_in, fan_out, rng, dtype) -> np.ndarray:
        return _uniform(shape, math.sqrt(3 / fan_in), rng, dtype)


@INITIALIZERS.register("lecun_normal")
class LecunNormal(Initializer):
    """LeCun: N(0, σ²), σ = 1 / √fan_in (not truncated); Nielsen's network2.py weights."""

    def __call__(self, shape, fan_in, fan_out, rng, dtype) -> np.ndarray:
        return _normal(shape, math.sqrt(1 / fan_in), rng, dtype)
