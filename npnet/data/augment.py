"""`Augmenter`: the training pipeline's on-the-fly augmentation, configured by `data.augment`.

    data:
      augment:
        shift: 2                            # pixels along each axis, t ~ U(−2, 2)
        rotate: 10                          # degrees, θ ~ U(−10°, 10°)
        scale: 0.1                          # s ~ U(0.9, 1.1)
        elastic: {sigma: 4.0, alpha: 34.0}  # Simard et al. 2003's elastic distortion

Each training batch is warped afresh (one affine grid plus the elastic field, one bilinear
interpolation; npnet.functional.augment), with draws from the generator the training loop
passes, its data stream, so a run stays bit-reproducible and a resumed run bit-identical.
Labels are untouched (a warped 7 is still a 7); validation and test data are never augmented.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from npnet.errors import ConfigError
from npnet.functional.augment import affine_grid, bilinear_sample, elastic_field, identity_grid


class Augmenter:
    """Random affine warps (shift, rotation, scaling) and elastic distortions of image batches.

    `__call__(x, rng)`: x (N, C, H, W) -> a new (N, C, H, W) array, same dtype; x is not
    changed. All N images are warped at once; every image gets its own draws.
    """

    def __init__(
        self,
        shift: float = 0.0,
        rotate: float = 0.0,
        scale: float = 0.0,
        elastic: dict[str, float] | None = None,
    ):
        self.shift = float(shift)
        self.rotate = float(rotate)
        self.scale = float(scale)
        self.elastic = dict(elastic) if elastic else None

    @classmethod
    def from_config(cls, augment: dict[str, Any] | None) -> Augmenter | None:
        """The augmenter `data.augment` asks for (validated by npnet.config), or None."""
        return cls(**augment) if augment else None

    def check_input_shape(self, input_shape: tuple[int, ...]) -> None:
        if len(input_shape) != 3:
            raise ConfigError(
                f"data.augment warps images (channels, height, width); these samples are "
                f"{tuple(input_shape)}; remove data.augment for this dataset"
            )

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, _, height, width = x.shape
        if self.rotate or self.scale or self.shift:
            # Draws in a fixed order, each only when its augmentation is on.
            angle = (
                rng.uniform(-1, 1, n) * math.radians(self.rotate) if self.rotate else np.zeros(n)
            )
            scale = 1 + rng.uniform(-1, 1, n) * self.scale if self.scale else np.ones(n)
            shift = rng.uniform(-1, 1, (n, 2)) * self.shift if self.shift else np.zeros((n, 2))
            ys, xs = affine_grid(angle, scale, shift, height, width)
        else:
            ys, xs = identity_grid(n, height, width)
        if self.elastic:
            uniform = rng.random((2, n, height, width), dtype=np.float32)
            uniform *= 2
            uniform -= 1
            dy, dx = elastic_field(uniform, self.elastic["sigma"], self.elastic["alpha"])
            ys, xs = ys + dy, xs + dx
        return bilinear_sample(x, ys, xs)
