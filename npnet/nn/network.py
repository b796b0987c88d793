"""A network: layers applied in order, and back-propagation through them in reverse.

    out = net.forward(x, training)     # x: (N, *input_shape) -> out: (N, *output_shape)
    net.backward(grad_out)             # fills every layer's grads, last layer first

Parameters are addressed as "<layer index>.<name>" ("0.W", "3.b"): the keys of `parameters()`,
`gradients()`, the optimizer's state and the weights file.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from npnet.errors import ConfigError, RunError
from npnet.nn.layer import Layer, Shape
from npnet.registry import LAYERS


class Network:
    """A sequential stack of built layers."""

    def __init__(self, layers: list[Layer], input_shape: Shape):
        self.layers = layers
        self.input_shape = tuple(input_shape)
        self.output_shape = layers[-1].out_shape if layers else self.input_shape

    @classmethod
    def from_specs(
        cls,
        specs: list[dict[str, dict[str, Any]]],
        input_shape: Shape,
        rng: np.random.Generator,
        dtype: np.dtype = np.float32,
    ) -> Network:
        """Construct and build layers from config specs `[{"dense": {"units": 10}}, ...]`.

        `rng` initializes every weight in order, so the same seed gives the same network. A
        shape that does not fit is an error naming the layer: "model.layers[3] (dense): ...".
        """
        layers = []
        shape = tuple(input_shape)
        for index, spec in enumerate(specs):
            ((name, args),) = spec.items()
            try:
                layer = LAYERS.build(name, args)
                shape = layer.build(shape, rng, np.dtype(dtype))
            except ConfigError as error:
                raise ConfigError(f"model.layers[{index}] ({name}): {error}") from None
            layers.append(layer)
        # Nobody needs dL/dx of the data: the layers up to and including the first one with
        # parameters (e.g. flatten, then dense) skip computing it.
        for layer in layers:
            layer.input_grad = False
            if layer.params:
                break
        return cls(layers, input_shape)

    def set_noise_rng(self, rng: np.random.Generator) -> None:
        """Give every stochastic layer (dropout) the one random stream a checkpoint saves."""
        for layer in self.layers:
            layer.rng = rng

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        """Fill every layer's grads; return dL/dx of the input (None unless the first layer's
        `input_grad` is on)."""
        for layer in reversed(self.layers):
            grad_out = layer.backward(grad_out)
            if grad_out is None:
                break
        return grad_out

    def predict(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """Evaluation-mode outputs for all of `x`, computed `batch_size` samples at a time."""
        outs = [self.forward(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        return np.concatenate(outs) if outs else np.empty((0, *self.output_shape), x.dtype)

    def parameters(self) -> dict[str, np.ndarray]:
        return {
            f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params.items()
        }

    def gradients(self) -> dict[str, np.ndarray]:
        return {
            f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads.items()
        }

    def buffers(self) -> dict[str, np.ndarray]:
        """Non-trained state (batch-norm running statistics), keyed like parameters."""
        return {
            f"{i}.{k}": v
            for i, layer in enumerate(self.layers)
            for k, v in getattr(layer, "buffers", {}).items()
        }

    def state(self) -> dict[str, np.ndarray]:
        """Everything a weights file holds: parameters and buffers."""
        return {**self.parameters(), **self.buffers()}

    def load_state(self, arrays: dict[str, np.ndarray], source: str = "weights") -> None:
        """Copy saved arrays into the network; every key, shape and dtype must match exactly."""
        expected = self.state()
        missing = sorted(set(expected) - set(arrays))
        extra = sorted(set(arrays) - set(expected))
        if missing or extra:
            raise RunError(
                f"{source}: does not fit this model (missing {missing or 'nothing'}, "
                f"unexpected {extra or 'nothing'})"
            )
        for key, target in expected.items():
            found = arrays[key]
            if found.shape != target.shape:
                index = int(key.split(".")[0])
                raise RunError(
                    f"{source}: layer {index} ({self.layers[index].name}) '{key}' has shape "
                    f"{found.shape}, the model expects {target.shape}"
                )
            target[...] = found

    def summary(self) -> list[dict[str, Any]]:
        """One row per layer: index, name, output shape, parameter count."""
        return [
            {
                "index": i,
                "layer": layer.name,
                "output_shape": layer.out_shape,
                "params": sum(p.size for p in layer.params.values()),
            }
            for i, layer in enumerate(self.layers)
        ]

    def num_params(self) -> int:
        return sum(p.size for p in self.parameters().values())
