"""Build-time checks: what would otherwise fail on the first batch (or take the machine's
memory) is refused while the experiment is built, before a run directory exists.

    check_memory   parameters and per-batch activations, estimated from the layers' shapes
                   before any weight is allocated, against the memory available
    check_output   the network's per-sample output against the data: C outputs for C classes
                   (or 1 for two), the target's shape for regression
    dry_step       one forward, loss and backward pass on a tiny training batch (and on a
                   batch of one sample when an epoch's last batch holds one), so a loss that
                   does not fit the labels or a layer that cannot train on the batch is a
                   ConfigError now; the network's arrays and random streams are restored after
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from npnet.config import Config
from npnet.data import Dataset
from npnet.errors import ConfigError
from npnet.nn.loss import Loss
from npnet.nn.network import Network
from npnet.registry import LAYERS

# Per parameter: the value, its gradient and up to two optimizer slots (Adam's moments).
COPIES_PER_PARAMETER = 4
# Per activation value in training: the forward output, the cache kept for backward, and
# the gradient flowing back.
COPIES_PER_ACTIVATION = 3


def available_memory() -> int:
    """Bytes of memory this process can still use: MemAvailable, within a cgroup limit."""
    available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit.isdigit() and used.isdigit():
            available = min(available, int(limit) - int(used))
    except OSError:
        pass
    return max(available, 0)


def gib(size: int | float) -> str:
    return f"{size / 2**30:,.1f} GiB" if size >= 2**27 else f"{size / 2**20:,.1f} MiB"


def estimate_memory(config: Config, input_shape: tuple[int, ...], itemsize: int) -> dict | None:
    """Bytes the config's model needs: {"parameters", "count", "activations", "batch"}
    (activations for one training batch, or one evaluation batch if larger, named by
    "batch"), in exact Python integers; None when a layer does not fit its input (building
    the network then names it)."""
    shape = tuple(input_shape)
    count, values = 0, 0
    try:
        for spec in config.model.layers:
            ((name, args),) = spec.items()
            layer = LAYERS.build(name, args)
            out_shape = tuple(layer.output_shape(shape))
            count += layer.parameter_count(shape)
            values += math.prod(out_shape)
            shape = out_shape
    except ConfigError:
        return None
    values += math.prod(input_shape)
    train = config.train
    training = train.batch_size * values * COPIES_PER_ACTIVATION
    evaluation = train.eval_batch_size * values
    batch = (
        f"a training batch of {train.batch_size}"
        if training >= evaluation
        else f"an evaluation batch of {train.eval_batch_size}"
    )
    return {
        "count": count,
        "parameters": count * itemsize * COPIES_PER_PARAMETER,
        "activations": max(training, evaluation) * itemsize,
        "batch": batch,
    }


def check_memory(config: Config, input_shape: tuple[int, ...], dtype: Any = np.float32) -> None:
    """Refuse a model whose parameters and per-batch activations cannot fit in memory."""
    estimate = estimate_memory(config, input_shape, np.dtype(dtype).itemsize)
    if estimate is None:
        return
    needed = estimate["parameters"] + estimate["activations"]
    available = available_memory()
    if needed > available:
        raise ConfigError(
            f"{config.source}: model: needs about {gib(needed)} of memory "
            f"({gib(estimate['parameters'])} for {estimate['count']:,} parameters with their "
            f"gradients and optimizer state, {gib(estimate['activations'])} of activations "
            f"for {estimate['batch']}), but {gib(available)} is available; make the layers "
            "smaller (units, filters, padding) or the batches (train.batch_size, "
            "train.eval_batch_size)"
        )


def check_output(config: Config, dataset: Dataset, net: Network) -> None:
    """The network's per-sample output must fit the data: (C,) for C classes (or (1,), one
    logit, for two), the targets' per-sample shape for regression."""
    out = tuple(net.output_shape)
    last = f"model.layers[{len(net.layers) - 1}] ({net.layers[-1].name})"
    if dataset.num_classes is not None:
        classes = dataset.num_classes
        if out == (classes,) or (classes == 2 and out == (1,)):
            return
        either = " (or 1, one logit)" if classes == 2 else ""
        raise ConfigError(
            f"{config.source}: {last}: the network gives {describe(out)} per sample, but "
            f"{dataset.name} has {classes} classes: the last layer must give {classes} "
            f"outputs{either}, e.g. dense: {{units: {classes}}}"
        )
    target = tuple(dataset.y_train.shape[1:])
    if out == target or {out, target} <= {(), (1,)}:
        return
    raise ConfigError(
        f"{config.source}: {last}: the network gives {describe(out)} per sample, but the "
        f"{dataset.name} targets have shape {target}: the last layer must give "
        f"{math.prod(target)} outputs, e.g. dense: {{units: {math.prod(target)}}}"
    )


def describe(shape: tuple[int, ...]) -> str:
    return f"{shape[0]} outputs" if len(shape) == 1 else f"outputs of shape {shape}"


def dry_batches(config: Config, dataset: Dataset) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(x, y, where) for the dry step: two samples (for classes, those with the smallest and
    the largest label, so the labels' range is tested), and one sample when an epoch ends on
    a batch of one; `where` starts the message when the network cannot train on the batch."""
    n, batch_size = len(dataset.x_train), config.train.batch_size
    y = dataset.y_train
    if dataset.num_classes is not None and n > 1:
        index = np.array([int(np.argmin(y)), int(np.argmax(y))])
    else:
        index = np.arange(min(2, n))
    source = config.source
    batches = [
        (dataset.x_train[index], y[index], f"{source}: model: cannot train on {len(index)} samples")
    ]
    if len(index) > 1 and batch_size == 1:
        where = f"{source}: train.batch_size: the network cannot train on batches of 1 sample"
        batches.append((dataset.x_train[-1:], y[-1:], where))
    elif len(index) > 1 and n % batch_size == 1:
        where = (
            f"{source}: train.batch_size: {batch_size} leaves a last batch of 1 sample of the "
            f"{n} training examples, and the network cannot train on it (choose a batch size "
            "that does not leave 1 over, or another data.train_size)"
        )
        batches.append((dataset.x_train[-1:], y[-1:], where))
    return batches


def dry_step(config: Config, dataset: Dataset, net: Network, loss: Loss) -> None:
    """Forward, loss and backward on tiny training batches; a failure is a ConfigError naming
    the part that does not fit. Leaves the network's arrays and random streams as they were."""
    saved = {key: np.array(value, copy=True) for key, value in net.state().items()}
    streams = {id(layer.rng): layer.rng for layer in net.layers if layer.rng is not None}
    rng_states = {key: rng.bit_generator.state for key, rng in streams.items()}
    try:
        for x, y, where in dry_batches(config, dataset):
            with np.errstate(all="ignore"):
                try:
                    out = net.forward(x, training=True)
                except ValueError as error:
                    raise ConfigError(f"{where}: {error}") from None
                try:
                    loss.forward(out, y)
                    grad = loss.backward()
                except ValueError as error:
                    targets = (
                        f"{dataset.num_classes}-class integer labels"
                        if dataset.num_classes is not None
                        else f"regression targets of shape {tuple(y.shape[1:])}"
                    )
                    raise ConfigError(
                        f"{config.source}: loss: {loss.name} does not fit {dataset.name}'s "
                        f"{targets} with network outputs {tuple(out.shape[1:])}: {error}"
                    ) from None
                net.backward(grad)
    finally:
        net.load_state(saved)
        for key, rng in streams.items():
            rng.bit_generator.state = rng_states[key]
