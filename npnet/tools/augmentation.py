"""What `data.augment` feeds the network (`npnet data CONFIG --augment`): a few training
images, each beside several of its random warps, and the cost of warping one epoch."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from npnet.config import Config
from npnet.data.augment import Augmenter
from npnet.engine.experiment import build_dataset, random_streams
from npnet.errors import ConfigError


def augmented_samples(config: Config, images: int = 8, versions: int = 7) -> dict[str, Any]:
    """The first `images` training images and `versions` warps of each, drawn from the
    config's data stream (seeded by its seed, as a training would).

    Returns "grid" (images, 1 + versions, C, H, W): column 0 the original, then the warps;
    "labels" (images,); "seconds_per_epoch" and "cpu_seconds_per_epoch": the wall-clock and
    CPU time to warp the whole training split in batches of `train.batch_size` (what
    augmentation adds to each epoch; on a busy machine the CPU time is the steadier one).
    """
    augment = Augmenter.from_config(config.data.augment)
    if augment is None:
        raise ConfigError(
            f"{config.source}: data.augment is not set; add e.g. "
            "augment: {shift: 2, rotate: 10, scale: 0.1} to the data section"
        )
    data = build_dataset(config)
    try:
        augment.check_input_shape(data.input_shape)
    except ConfigError as error:
        raise ConfigError(f"{config.source}: {error}") from None
    _, rng, _ = random_streams(config.seed)
    originals = data.x_train[:images]
    warps = [augment(originals, rng) for _ in range(versions)]
    grid = np.stack([originals, *warps], axis=1)
    return {
        "grid": grid,
        "labels": data.y_train[:images],
        **epoch_cost(augment, data.x_train, config.train.batch_size, rng),
        "train_examples": len(data.x_train),
        "batch_size": config.train.batch_size,
    }


def epoch_cost(
    augment: Augmenter, x: np.ndarray, batch_size: int, rng: np.random.Generator
) -> dict[str, float]:
    """Wall-clock and CPU seconds to warp all of x (N, C, H, W) batch by batch, as one
    training epoch does."""
    start, cpu_start = time.perf_counter(), time.process_time()
    for first in range(0, len(x), batch_size):
        augment(x[first : first + batch_size], rng)
    return {
        "seconds_per_epoch": time.perf_counter() - start,
        "cpu_seconds_per_epoch": time.process_time() - cpu_start,
    }
