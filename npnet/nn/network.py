"""A network: layers applied in order, and back-propagation through them in reverse.

    out = net.forward(x, training)     # x: (N, *input_shape) -> out: (N, *output_shape)
    net.backward(grad_out)             # fills every layer's grads, last layer first

Parameters are addressed as "<layer index>.<name>" ("0.W", "3.b"): the keys of `parameters()`,
`gradients()`, the optimizer's state and the weights file.

A ReLU followed by a max-pool runs after it instead: max(relu(x)) = relu(max(x)) because ReLU
never reorders its inputs, so the outputs and gradients are the same, and ReLU (with its mask
and the product in its backward pass) touches the pooled array, size² times smaller. A first
convolution and the max-pool it then runs before are one pass (npnet.nn.conv_pool): the same
outputs; its gradients the same sums in another order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from npnet.errors import ConfigError, RunError
from npnet.nn.activations import ReLU
from npnet.nn.conv_pool import ConvMaxPool, fusable
from npnet.nn.layer import Layer, Shape
from npnet.nn.pooling import MaxPool2D
from npnet.registry import LAYERS


def is_weight(key: str) -> bool:
    """Whether a parameter key names a weight matrix or kernel ("3.W"), the arrays L2 and
    the gradient-norm tables look at, rather than a bias or a batch-norm scale."""
    return key.endswith(".W")


def layer_index(key: str) -> int:
    """The layer a parameter key belongs to: "3.W" -> 3."""
    return int(key.split(".", 1)[0])


class Network:
    """A sequential stack of built layers."""

    def __init__(self, layers: list[Layer], input_shape: Shape):
        self.layers = layers
        self.input_shape = tuple(input_shape)
        self.output_shape = layers[-1].out_shape if layers else self.input_shape
        self.run_order = fuse_conv_pool(pool_before_relu(layers))

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
        """Give every stochastic layer (dropout) the one random stream a checkpoint saves;
        the others keep the generator they were built with."""
        for layer in self.layers:
            if layer.stochastic:
                layer.rng = rng

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        for layer in self.run_order:
            x = layer.forward(x, training)
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        """Fill every layer's grads; return dL/dx of the input (None unless the first layer's
        `input_grad` is on)."""
        for layer in reversed(self.run_order):
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
        """Copy saved arrays into the network; every key and shape must match exactly, and
        every array must hold real floating-point numbers (no ints, complex, strings or
        structured records, which a cast would silently change)."""
        self.check_state(arrays, source)
        for key, target in self.state().items():
            target[...] = arrays[key]

    def check_state(self, arrays: dict[str, np.ndarray], source: str = "weights") -> None:
        """RunError naming the key unless `arrays` fit `state()`: keys, shapes, float dtypes."""
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
                index = layer_index(key)
                raise RunError(
                    f"{source}: layer {index} ({self.layers[index].name}) '{key}' has shape "
                    f"{found.shape}, the model expects {target.shape}"
                )
            if found.dtype.kind != "f":
                raise RunError(
                    f"{source}: '{key}' holds {found.dtype} values, the model expects "
                    f"floating-point numbers ({target.dtype})"
                )

    def summary(self) -> list[dict[str, Any]]:
        """One row per layer, in config order: index, name, output shape, parameter count,
        and `runs`: None, or where `run_order` moves the layer ("after 3", "before 2")."""
        moved = {}
        for first, second in self.reorderings():
            moved[first], moved[second] = f"after {second}", f"before {first}"
        return [
            {
                "index": i,
                "layer": layer.name,
                "output_shape": layer.out_shape,
                "params": sum(p.size for p in layer.params.values()),
                "runs": moved.get(i),
            }
            for i, layer in enumerate(self.layers)
        ]

    def reorderings(self) -> list[tuple[int, int]]:
        """(i, j): config layer i runs after layer j, which follows it in the config (a ReLU
        and the max-pool after it, see the module docstring)."""
        position = {
            id(layer): n
            for n, step in enumerate(self.run_order)
            for layer in getattr(step, "layers", (step,))
        }
        return [
            (i, i + 1)
            for i in range(len(self.layers) - 1)
            if position[id(self.layers[i])] > position[id(self.layers[i + 1])]
        ]

    def num_params(self) -> int:
        return sum(p.size for p in self.parameters().values())


def fuse_conv_pool(order: list[Layer]) -> list[Layer | ConvMaxPool]:
    """`order` with each conv2d and the max-pool it runs before merged into one ConvMaxPool
    where that pays (npnet.nn.conv_pool)."""
    steps: list[Layer | ConvMaxPool] = []
    for layer in order:
        if steps and fusable(steps[-1], layer):
            steps[-1] = ConvMaxPool(steps[-1], layer)
        else:
            steps.append(layer)
    return steps


def pool_before_relu(layers: list[Layer]) -> list[Layer]:
    """`layers` in the order the network runs them: each ReLU directly followed by a max-pool
    swapped with it (see the module docstring)."""
    order = list(layers)
    for i in range(len(order) - 1):
        if isinstance(order[i], ReLU) and isinstance(order[i + 1], MaxPool2D):
            order[i], order[i + 1] = order[i + 1], order[i]
    return order
