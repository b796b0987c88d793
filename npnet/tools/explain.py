"""What the chapters that train nothing show: the library side of `npnet summary`, `data`,
`activations`, `losses`, `descent`, `gradnorms` and `features`.

Every function returns plain data (lists of row dicts, dicts of numbers); the CLI renders
it as tables. FLOP convention: one multiply-add is 2 FLOPs, and only the matrix products
are counted (dense 2·in·out per sample, conv2d 2·C·kh·kw·F·OH·OW); activations, pooling,
batch norm and bias additions cost one operation per value and are left out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from npnet import functional as F
from npnet.config import Config
from npnet.data import load_dataset
from npnet.engine.evaluate import load_run
from npnet.engine.experiment import build_dataset, build_experiment
from npnet.engine.runs import GRAD_NORMS_FILE, read_config, read_grad_norms
from npnet.errors import ConfigError, RunError
from npnet.nn.layer import Layer
from npnet.nn.network import Network

# --- model summary (chapters 1.2, 3.3) --------------------------------------------------


def layer_flops(layer: Layer) -> int:
    """Forward FLOPs per sample of one built layer: 2·W.size for dense (2·in·out),
    2·W.size·OH·OW for conv2d (2·C·kh·kw·F·OH·OW), 0 for the rest."""
    if layer.name == "dense":
        return 2 * layer.params["W"].size
    if layer.name == "conv2d":
        _, oh, ow = layer.out_shape
        return 2 * layer.params["W"].size * oh * ow
    return 0


def model_summary(net: Network, x: np.ndarray | None = None) -> list[dict[str, Any]]:
    """One row per layer: index, name, output shape, parameter shapes, parameter count and
    forward FLOPs per sample; with a batch `x` (N, *input_shape) also the mean and std of the
    layer's output on it and the fraction of exact zeros (dead ReLUs, dropped units)."""
    rows = []
    out = x
    for row, layer in zip(net.summary(), net.layers, strict=True):
        row["param_shapes"] = {name: tuple(p.shape) for name, p in layer.params.items()}
        row["flops"] = layer_flops(layer)
        if out is not None:
            out = layer.forward(out, training=False)
            row["mean"] = float(out.mean())
            row["std"] = float(out.std())
            row["zeros"] = float(np.mean(out == 0))
        rows.append(row)
    return rows


def summarize_config(config: Config, samples: int = 256) -> dict[str, Any]:
    """Build a config's data and (untrained, seeded) network and summarize it, with output
    statistics on its first `samples` training samples: what a forward pass does to them."""
    if samples < 1:
        raise ConfigError(f"--samples must be at least 1, got {samples}")
    exp = build_experiment(config)
    x = exp.dataset.x_train[:samples]
    rows = model_summary(exp.net, x)
    return {
        "name": config.name,
        "input_shape": exp.net.input_shape,
        "samples": len(x),
        "rows": rows,
        "params": exp.net.num_params(),
        "flops": sum(row["flops"] for row in rows),
    }


# --- the dataset before and after normalization (chapter 1.1) ----------------------------


def array_stats(x: np.ndarray) -> dict[str, Any]:
    """Shape, dtype, min, max, mean and std (population, in float64) of an array."""
    return {
        "shape": tuple(x.shape),
        "dtype": str(x.dtype),
        "min": float(x.min()),
        "max": float(x.max()),
        "mean": float(x.mean(dtype=np.float64)),
        "std": float(x.std(dtype=np.float64)),
    }


def describe_dataset(config: Config) -> dict[str, Any]:
    """A config's dataset as raw arrays (normalize: none) and as the trainer sees it (the
    config's normalization): per split the statistics of x, the class counts, and how far
    `functional.normalize` of the raw training inputs is from the pipeline's result."""
    data = config.data

    def load(normalize: str) -> Any:
        return load_dataset(
            data.dataset,
            data.options,
            validation=data.validation,
            normalize=normalize,
            train_size=data.train_size,
            seed=config.seed,
        )

    raw, prepared = load("none"), load(data.normalize)
    rows = []
    for split in ("train", "val", "test"):
        for stage, dataset in (("raw", raw), (data.normalize, prepared)):
            x = getattr(dataset, f"x_{split}")
            if len(x):
                rows.append({"split": split, "stage": stage, **array_stats(x)})
    classes = []
    if raw.num_classes is not None:
        for split in ("train", "val", "test"):
            y = getattr(raw, f"y_{split}")
            classes.append(
                {"split": split, "counts": np.bincount(y, minlength=raw.num_classes).tolist()}
            )
    # `standard` with image statistics is one scalar mean and std: exactly normalize(x).
    check = None
    if data.normalize == "standard":
        axis = None if raw.x_train.ndim > 2 else 0
        ours = F.normalize(raw.x_train.astype(np.float64), axis=axis)
        check = float(np.max(np.abs(ours - prepared.x_train)))
    return {
        "name": raw.name,
        "task": raw.task,
        "normalize": data.normalize,
        "normalization": prepared.normalization,
        "rows": rows,
        "classes": classes,
        "normalize_check": check,
        "info": {k: v for k, v in raw.info.items() if k != "description"},
        "description": raw.info.get("description", ""),
    }


# --- activations and their derivatives (chapter 1.3) -------------------------------------

ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "sigmoid": (F.sigmoid, F.sigmoid_derivative),
    "tanh": (F.tanh, F.tanh_derivative),
    "relu": (F.relu, F.relu_derivative),
    "leaky_relu": (F.leaky_relu, F.leaky_relu_derivative),
    "elu": (F.elu, F.elu_derivative),
    "gelu": (F.gelu, F.gelu_derivative),
}
# No point at 0, where ReLU's kink makes the central difference 1/2 (the two one-sided
# slopes averaged) while ReLU'(0) is 0 by convention: a disagreement of definitions.
SAMPLE_POINTS = (-5.0, -2.0, -0.5, 0.5, 2.0, 5.0)


def activation_table(points: tuple[float, ...] = SAMPLE_POINTS) -> list[dict[str, Any]]:
    """For each activation f and point z: f(z), the analytic f'(z), the central difference
    (f(z + ε) − f(z − ε)) / 2ε from `functional.numerical_gradient`, and |analytic − numeric|.

    The functions are elementwise, so the numerical gradient of Σ_i f(z_i) is f'(z_i) at
    every point at once."""
    rows = []
    for name, (f, derivative) in ACTIVATIONS.items():
        z = np.array(points, dtype=np.float64)
        values, slopes = f(z), derivative(z)
        numeric = F.numerical_gradient(lambda f=f, z=z: float(np.sum(f(z))), z)
        for i, point in enumerate(points):
            rows.append(
                {
                    "activation": name,
                    "z": point,
                    "value": float(values[i]),
                    "derivative": float(slopes[i]),
                    "numerical": float(numeric[i]),
                    "error": float(abs(slopes[i] - numeric[i])),
                }
            )
    return rows


def softmax_example(z: tuple[float, ...] = (1.0, 2.0, 3.0)) -> dict[str, Any]:
    """softmax of one logit vector, and the relative error of its backward pass
    (`softmax_backward`, a Jacobian-vector product) against central differences of
    L = Σ_i g_i·softmax(z)_i for a fixed g."""
    logits = np.array(z, dtype=np.float64)
    g = np.arange(1.0, len(z) + 1.0)
    analytic = F.softmax_backward(g, F.softmax(logits))
    numeric = F.numerical_gradient(lambda: float(np.sum(g * F.softmax(logits))), logits)
    return {
        "z": list(z),
        "softmax": F.softmax(logits).tolist(),
        "sum": float(F.softmax(logits).sum()),
        "error": F.relative_error(analytic, numeric),
    }


# --- losses on hand-picked predictions (chapter 2.1) --------------------------------------


def logit(p: float) -> float:
    """The logit z with σ(z) = p: log(p / (1 − p))."""
    return float(np.log(p / (1.0 - p)))


def loss_examples() -> list[dict[str, Any]]:
    """MSE, binary and categorical cross-entropy on a few predictions, each next to the value
    worked out by hand. Both cross-entropies take logits, as the trainer does: a probability
    p enters as its logit log(p / (1 − p)) (binary) or log p (categorical, since
    softmax(log p) = p), so the hand value is simply −log of the probability of the truth."""
    rows = []
    for case, pred, target in (
        ("perfect", [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]),
        ("each off by 1", [2.0, 3.0, 4.0], [1.0, 2.0, 3.0]),
        ("one off by 3", [1.0, 2.0, 6.0], [1.0, 2.0, 3.0]),
    ):
        by_hand = float(np.mean(np.square(np.subtract(pred, target))))
        value = F.mse_loss(np.array(pred), np.array(target))
        rows.append(loss_row("MSE", case, pred, target, value, by_hand, "mean (ŷ − y)²"))
    for case, p, y in (
        ("confident, right", 0.9, 1.0),
        ("unsure", 0.5, 1.0),
        ("confident, wrong", 0.1, 1.0),
        ("very confident, wrong", 0.001, 1.0),
    ):
        value = F.binary_cross_entropy(np.array([logit(p)]), np.array([y]))
        rows.append(loss_row("BCE", case, [p], [y], value, -np.log(p), "−log p(y=1)"))
    for case, probs in (
        ("confident, right", [0.7, 0.2, 0.1]),
        ("uniform", [1 / 3, 1 / 3, 1 / 3]),
        ("confident, wrong", [0.01, 0.98, 0.01]),
    ):
        value = F.cross_entropy(np.log(np.array([probs])), np.array([0]))
        by_hand = -np.log(probs[0])
        rows.append(loss_row("CE", case, probs, [0], value, by_hand, "−log p(true class)"))
    return rows


def loss_row(
    loss: str,
    case: str,
    prediction: list[float],
    target: list[float],
    value: float,
    by_hand: float,
    formula: str,
) -> dict[str, Any]:
    return {
        "loss": loss,
        "case": case,
        "prediction": prediction,
        "target": target,
        "value": float(value),
        "by_hand": float(by_hand),
        "formula": formula,
    }


# --- gradient descent on synthetic linear data (chapters 2.2, 2.3) ------------------------


def fit_linear(config: Config, batch_sizes: list[int]) -> dict[str, Any]:
    """Fit the config's regression data with `functional.gradient_descent`, once per batch
    size (the training set's size or more: full batch), with the config's optimizer.lr,
    train.epochs and seed.

    Per batch size: steps, seconds, the final training and test MSE, the learned weights and
    their largest distance to the true ones (when the dataset knows them, as `linear` does),
    and the noise: the std of the last epoch's step losses, each measured on its own batch
    (0 for full batch, whose one step per epoch sees all the data)."""
    dataset = build_dataset(config)
    if dataset.num_classes is not None:
        raise ConfigError(
            f"{config.source}: data.dataset: gradient descent here fits a linear regression; "
            f"'{dataset.name}' is a classification dataset (use e.g. linear)"
        )
    if "lr" not in config.optimizer.args:
        raise ConfigError(f"{config.source}: optimizer.lr: give the learning rate to use")
    x, y = dataset.x_train.astype(np.float64), dataset.y_train.astype(np.float64)
    x_test, y_test = dataset.x_test.astype(np.float64), dataset.y_test.astype(np.float64)
    w_true = dataset.info.get("w_true")
    truth = None if w_true is None else [*w_true, dataset.info["b_true"]]
    rows = []
    for batch_size in batch_sizes:
        rng = np.random.default_rng(config.seed)
        start = time.perf_counter()
        W, b, losses = F.gradient_descent(
            x,
            y,
            np.zeros((x.shape[1], 1)),
            np.zeros(1),
            lr=config.optimizer.args["lr"],
            epochs=config.train.epochs,
            batch_size=batch_size,
            rng=rng,
        )
        seconds = time.perf_counter() - start
        steps_per_epoch = -(-len(x) // batch_size)
        learned = [*W[:, 0].tolist(), float(b[0])]
        error = None if truth is None else float(np.max(np.abs(np.subtract(learned, truth))))
        rows.append(
            {
                "batch_size": min(batch_size, len(x)),
                "steps": len(losses),
                "seconds": seconds,
                "train_mse": F.mse_loss(F.linear(x, W, b), y),
                "test_mse": F.mse_loss(F.linear(x_test, W, b), y_test),
                "noise": float(np.std(losses[-steps_per_epoch:])),
                "learned": learned,
                "max_error": error,
                "losses": losses,
            }
        )
    return {"n_train": len(x), "features": x.shape[1], "truth": truth, "rows": rows}


# --- per-layer gradient norms of a run (chapter 4.1) -------------------------------------


def gradient_norms(run_dir: Path) -> dict[str, Any]:
    """The weight gradients' mean L2 norms from a run's grad_norms.csv (written with
    `train.log_grad_norms: true`), one row per weight tensor, first layer first: the norm at
    the first and the last epoch, and at the first epoch relative to the output layer's.
    Vanishing gradients show as ratios far below 1 in the early layers."""
    path = run_dir / GRAD_NORMS_FILE
    if not path.is_file():
        raise RunError(
            f"{run_dir}: no {GRAD_NORMS_FILE}; train with `--set train.log_grad_norms=true`"
        )
    layers = read_config(run_dir).model.layers
    epochs = read_grad_norms(run_dir, len(layers))
    if not epochs:
        raise RunError(f"{path}: no epochs recorded yet")
    keys = [key for key in epochs[0] if key.endswith(".W")]
    last = epochs[0][keys[-1]]
    rows = [
        {
            "key": key,
            "layer": int(key.split(".")[0]),
            "name": next(iter(layers[int(key.split(".")[0])])),
            "first": epochs[0][key],
            "last": epochs[-1][key],
            "relative": epochs[0][key] / last if last else float("inf"),
        }
        for key in keys
    ]
    return {"run_dir": str(run_dir), "epochs": len(epochs), "rows": rows}


# --- feature maps of a trained convolution (chapter 4.2) ----------------------------------


def feature_maps(run_dir: Path, image: int = 0, data_dir: Path | None = None) -> dict[str, Any]:
    """Run test image `image` through a trained run up to its first conv2d layer and report
    each filter's map (min, max, mean, fraction > 0). "input" is the image (C, H, W), "maps"
    (F, OH, OW) the convolution's output before any activation (`npnet features` draws both)."""
    exp = load_run(run_dir, data_dir)
    conv = next((i for i, layer in enumerate(exp.net.layers) if layer.name == "conv2d"), None)
    if conv is None:
        raise RunError(f"{run_dir}: the model has no conv2d layer to show feature maps of")
    x_test = exp.dataset.x_test
    if not 0 <= image < len(x_test):
        raise ConfigError(f"--image must be in 0..{len(x_test) - 1}, got {image}")
    x = x_test[image : image + 1]
    for layer in exp.net.layers[: conv + 1]:
        x = layer.forward(x, training=False)
    maps = x[0]
    rows = [
        {
            "filter": f,
            "min": float(m.min()),
            "max": float(m.max()),
            "mean": float(m.mean()),
            "active": float(np.mean(m > 0)),
        }
        for f, m in enumerate(maps)
    ]
    result = {
        "run_dir": str(run_dir),
        "image": image,
        "label": int(exp.dataset.y_test[image]),
        "layer": conv,
        "shape": tuple(maps.shape),
        "rows": rows,
        "input": x_test[image],
        "maps": maps,
    }
    return result
