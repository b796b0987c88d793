"""An experiment: everything a config builds (data, network, loss, optimizer, schedule), and
the builders that make each part from the config and one seed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from npnet.config import Config
from npnet.data import Dataset, load_dataset
from npnet.data.augment import Augmenter
from npnet.engine.preflight import check_memory, check_output, dry_step
from npnet.errors import ConfigError
from npnet.nn.loss import Loss
from npnet.nn.network import Network
from npnet.nn.parallel import DataParallel, auto_parallel
from npnet.optim.optimizer import Optimizer
from npnet.optim.schedule import Schedule
from npnet.registry import LOSSES, OPTIMIZERS, SCHEDULES


@dataclass
class Experiment:
    """Everything built from a config: data, network, loss, optimizer, schedule.

    With `train.threads` > 1 the network is a DataParallel: the same layers, run in slices.
    `augment` warps the training batches (`data.augment`; None: no augmentation)."""

    config: Config
    dataset: Dataset
    net: Network
    loss: Loss
    optimizer: Optimizer
    schedule: Schedule
    augment: Augmenter | None = None


def random_streams(seed: int) -> tuple[np.random.Generator, ...]:
    """Independent generators for weights, shuffling and dropout, all from one seed."""
    return tuple(np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))


def build_dataset(config: Config) -> Dataset:
    """The config's dataset; its argument errors name the config file and the data section."""
    data = config.data
    try:
        return load_dataset(
            data.dataset,
            data.options,
            validation=data.validation,
            normalize=data.normalize,
            train_size=data.train_size,
            seed=config.seed,
        )
    except ConfigError as error:  # a dataset option, checked by its builder: say where
        raise ConfigError(f"{config.source}: data: {error}") from None


def build_network(
    config: Config, dataset: Dataset, rng: np.random.Generator, dtype: Any = np.float32
) -> Network:
    """The config's layers built for the dataset's sample shape (checked against
    `model.input_shape` when the config states one)."""
    input_shape = tuple(dataset.input_shape)
    stated = config.model.input_shape
    if stated is not None and tuple(stated) != input_shape:
        raise ConfigError(
            f"{config.source}: model.input_shape: {list(stated)} does not match the "
            f"{dataset.name} samples, which are {list(input_shape)}"
        )
    check_memory(config, input_shape, dtype)
    try:
        return Network.from_specs(config.model.layers, input_shape, rng, dtype)
    except ConfigError as error:
        raise ConfigError(f"{config.source}: {error}") from None


def build_model(config: Config, net: Network) -> Network:
    """`net`, run in `train.threads` slices at once when there are more than one, or the way
    `auto_parallel` picks for this machine."""
    threads = config.train.threads
    if threads == "auto":
        return auto_parallel(net)
    return net if threads == 1 else DataParallel(net, threads)


def build_experiment(config: Config, dataset: Dataset | None = None) -> Experiment:
    """Build every part, then check that they fit together (`npnet.engine.preflight`): the
    network's output against the data, and one dry training step."""
    dataset = dataset if dataset is not None else build_dataset(config)
    init_rng, _, _ = random_streams(config.seed)
    augment = Augmenter.from_config(config.data.augment)
    if augment is not None:
        try:
            augment.check_input_shape(dataset.input_shape)
        except ConfigError as error:
            raise ConfigError(f"{config.source}: {error}") from None
    net = build_network(config, dataset, init_rng)
    loss = LOSSES.build(config.loss.name, config.loss.args)
    check_output(config, dataset, net)
    dry_step(config, dataset, net, loss)
    return Experiment(
        config=config,
        dataset=dataset,
        net=build_model(config, net),
        loss=loss,
        optimizer=OPTIMIZERS.build(config.optimizer.name, config.optimizer.args),
        schedule=SCHEDULES.build(config.schedule.name, config.schedule.args),
        augment=augment,
    )
