"""A trained run as an ONNX model: the network in evaluation mode, its input normalization
folded in, so any ONNX runtime can use it without npnet.

    model = export_run(Path("runs/20261201-093012-cnn"))      # an onnx.ModelProto, checked
    write_model(model, Path("cnn.onnx"))

The model's input "input" is (N, *input_shape) float32. For image runs it takes pixel values in
[0, 1] (MNIST: N×1×28×28, light digit on dark, as `npnet.data.digits.prepare_digit` makes
them); the graph multiplies them by the images' maximum (255) and applies the run's
normalization x' = (x − shift) / scale, the same float32 operations npnet's predictor does.
Tabular runs take their raw features. Outputs: "scores", the network's output (logits for a
classifier), and for a classifier whose outputs have a probability reading, "probabilities".

Every registered layer has a mapping (`LAYER_OPS`); the run's metadata carries the class
names and the normalization. A layer without a mapping is refused, never exported wrongly.
Needs the `onnx` package (`pip install 'npnet[export]'`); npnet itself never imports this.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import npnet
from npnet.engine import runs
from npnet.engine.inputs import Inputs, load_network
from npnet.errors import RunError
from npnet.nn.layer import Layer
from npnet.nn.network import Network
from npnet.tools.predict import output_kind

OPSET = 17  # onnxruntime ≥ 1.12 runs it; every op used here exists in it


class Graph:
    """The nodes and constants of a graph under construction, with unique value names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.constants: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def constant(self, hint: str, value: np.ndarray | float) -> str:
        """A float32 initializer holding `value`; returns its name."""
        name = self.name(hint)
        array = np.asarray(value, dtype=np.float32)
        self.constants.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str, **attributes) -> str:
        """Add one node with one output; returns the output's name."""
        out = self.name(hint)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attributes))
        return out


# --- the layer mappings: (graph, layer, input name, value-name hint) -> output name ----------


def _conv2d(g: Graph, layer: Layer, x: str, hint: str) -> str:
    (top, bottom), (left, right) = layer.pads
    inputs = [x, g.constant(f"{hint}.W", layer.params["W"])]
    if layer.use_bias:
        inputs.append(g.constant(f"{hint}.b", layer.params["b"]))
    return g.op(
        "Conv",
        inputs,
        hint,
        kernel_shape=list(layer.kernel_hw),
        strides=list(layer.stride_hw),
        pads=[top, left, bottom, right],  # ONNX: all the begins, then all the ends
    )


def _pool(op_type: str) -> Callable[[Graph, Layer, str, str], str]:
    def pool(g: Graph, layer: Layer, x: str, hint: str) -> str:
        size, step = layer.size, layer.step
        return g.op(op_type, [x], hint, kernel_shape=[size, size], strides=[step, step])

    return pool


def _dense(g: Graph, layer: Layer, x: str, hint: str) -> str:
    """Z = X W + b, as npnet computes it (W is (in, units), no transpose)."""
    z = g.op("MatMul", [x, g.constant(f"{hint}.W", layer.params["W"])], hint)
    if not layer.use_bias:
        return z
    return g.op("Add", [z, g.constant(f"{hint}.b", layer.params["b"])], hint)


def _batch_norm(g: Graph, layer: Layer, x: str, hint: str) -> str:
    """Evaluation mode, step for step as npnet does it: ((x − μ)·(1/√(σ² + ε)))·γ + β with
    the running statistics, per channel (axis 1) for (N, C) and (N, C, H, W) alike."""
    per_channel = (-1,) + (1,) * (len(layer.in_shape) - 1)
    mean, var = layer.buffers["running_mean"], layer.buffers["running_var"]
    inv_std = 1.0 / np.sqrt(var + layer.eps)
    steps = [
        ("Sub", "running_mean", mean),
        ("Mul", "inv_std", inv_std),
        ("Mul", "gamma", layer.params["gamma"]),
        ("Add", "beta", layer.params["beta"]),
    ]
    for op_type, what, value in steps:
        x = g.op(op_type, [x, g.constant(f"{hint}.{what}", value.reshape(per_channel))], hint)
    return x


def _gelu(g: Graph, layer: Layer, x: str, hint: str) -> str:
    """x/2 · (1 + erf(x/√2)), the exact GELU (ONNX has a Gelu op only from opset 20)."""
    erf = g.op("Erf", [g.op("Div", [x, g.constant("sqrt2", np.sqrt(2.0))], hint)], hint)
    one_plus = g.op("Add", [erf, g.constant("one", 1.0)], hint)
    half_x = g.op("Mul", [x, g.constant("half", 0.5)], hint)
    return g.op("Mul", [one_plus, half_x], hint)


def _simple(op_type: str, **attributes) -> Callable[[Graph, Layer, str, str], str]:
    return lambda g, layer, x, hint: g.op(op_type, [x], hint, **attributes)


LAYER_OPS: dict[str, Callable[[Graph, Layer, str, str], str]] = {
    "conv2d": _conv2d,
    "max_pool2d": _pool("MaxPool"),
    "avg_pool2d": _pool("AveragePool"),
    "dense": _dense,
    "flatten": _simple("Flatten", axis=1),
    "dropout": _simple("Identity"),  # the identity in evaluation mode
    "batch_norm": _batch_norm,
    "identity": _simple("Identity"),
    "relu": _simple("Relu"),
    "leaky_relu": lambda g, layer, x, hint: g.op(
        "LeakyRelu", [x], hint, alpha=layer.negative_slope
    ),
    "elu": lambda g, layer, x, hint: g.op("Elu", [x], hint, alpha=layer.alpha),
    "gelu": _gelu,
    "sigmoid": _simple("Sigmoid"),
    "tanh": _simple("Tanh"),
    "softmax": _simple("Softmax", axis=-1),
}


def network_to_onnx(net: Network, inputs: Inputs, loss: str, name: str) -> onnx.ModelProto:
    """The ONNX model of `net` (evaluation mode) with `inputs`' normalization in front, checked
    by onnx.checker. A layer without a mapping in LAYER_OPS is a RunError naming it."""
    for index, layer in enumerate(net.layers):
        if layer.name not in LAYER_OPS:
            raise RunError(
                f"model.layers[{index}] ({layer.name}) has no ONNX mapping, so the model "
                f"cannot be exported; export maps: {', '.join(sorted(LAYER_OPS))}"
            )
    g = Graph()
    x = _normalization(g, inputs)
    for index, layer in enumerate(net.layers):
        x = LAYER_OPS[layer.name](g, layer, x, f"{index}.{layer.name}")
    outputs = {"scores": x}
    kind = output_kind(net.layers[-1].name, loss, net.output_shape)
    if inputs.num_classes is not None and kind is not None:
        outputs["probabilities"] = _probabilities(g, x, kind)
    g.nodes += [helper.make_node("Identity", [v], [k], name=k) for k, v in outputs.items()]

    shapes = {
        "input": inputs.shape,
        "scores": net.output_shape,
        "probabilities": (2,) if kind == "sigmoid" else net.output_shape,
    }
    graph = helper.make_graph(
        g.nodes,
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *shapes["input"]])],
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, ["N", *shapes[k]]) for k in outputs],
        g.constants,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="npnet",
        producer_version=npnet.__version__,
        doc_string=_describe(inputs, list(outputs)),
    )
    # Opset 17 needs IR version 8 at most; the newest onnx would stamp a newer one that older
    # runtimes refuse.
    model.ir_version = 8
    helper.set_model_props(
        model,
        {
            "class_names": json.dumps(inputs.class_names),
            "normalization": json.dumps(inputs.normalization),
            "image_max": json.dumps(inputs.image_max),
        },
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def _normalization(g: Graph, inputs: Inputs) -> str:
    """The graph's input, raw-scaled and normalized as npnet's predictor does it:
    x · image_max (images), then − shift and / scale where they are not 0 and 1."""
    x = "input"
    norm = inputs.normalization
    if inputs.image_max is not None:
        x = g.op("Mul", [x, g.constant("image_max", inputs.image_max)], "raw_pixels")
    shift, scale = np.asarray(norm["shift"]), np.asarray(norm["scale"])
    if np.any(shift != 0):
        x = g.op("Sub", [x, g.constant("shift", shift)], "normalized")
    if np.any(scale != 1):
        x = g.op("Div", [x, g.constant("scale", scale)], "normalized")
    return x


def _probabilities(g: Graph, scores: str, kind: str) -> str:
    """Class probabilities from the scores, as `Predictor.probabilities` computes them."""
    if kind == "probabilities":
        return scores
    if kind == "softmax":
        return g.op("Softmax", [scores], "softmax", axis=-1)
    p = g.op("Sigmoid", [scores], "sigmoid")
    not_p = g.op("Sub", [g.constant("one", 1.0), p], "sigmoid")
    return g.op("Concat", [not_p, p], "sigmoid", axis=1)


def _describe(inputs: Inputs, outputs: list[str]) -> str:
    """The model's doc string: what its input takes, what it gives."""
    shape = "×".join(["N", *(str(n) for n in inputs.shape)])
    if inputs.image_max is None:
        taken = "raw features (the training normalization is built in)"
    else:
        taken = (
            f"pixel values in [0, 1], light on dark (the graph scales them by "
            f"{inputs.image_max:g} and applies the training normalization)"
        )
    return f"npnet model. input: {shape} float32 {taken}. outputs: {', '.join(outputs)}."


def export_run(run_dir: Path) -> onnx.ModelProto:
    """The checked ONNX model of a run directory's network (config.yaml + weights.npz)."""
    config, inputs, net = load_network(run_dir)
    try:
        return network_to_onnx(net, inputs, config.loss.name, config.name)
    except RunError as error:
        raise RunError(f"{run_dir}: {error}") from None


def write_model(model: onnx.ModelProto, path: Path) -> None:
    """Write `model` to `path` atomically: a complete file or none."""
    runs.atomic_write(path, lambda file: file.write(model.SerializeToString()))
