"""Initializers: registered, the PyTorch scales on a large draw, dtype kept, deterministic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from npnet.errors import ConfigError
from npnet.nn import init
from npnet.registry import INITIALIZERS

FAN_IN, FAN_OUT = 400, 500
SHAPE = (FAN_IN, FAN_OUT)  # 200,000 draws: the sample std is within ~0.3% of the true one

# name -> (std, uniform bound or None for a normal)
EXPECTED = {
    "normal": (0.01, None),
    "uniform": (0.05 / math.sqrt(3), 0.05),
    "xavier_uniform": (math.sqrt(2 / 900), math.sqrt(6 / 900)),
    "xavier_normal": (math.sqrt(2 / 900), None),
    "he_uniform": (math.sqrt(2 / 400), math.sqrt(6 / 400)),
    "he_normal": (math.sqrt(2 / 400), None),
    "lecun_uniform": (math.sqrt(1 / 400), math.sqrt(3 / 400)),
    "lecun_normal": (math.sqrt(1 / 400), None),
}


def draw(name, dtype=np.float64, seed=0, shape=SHAPE):
    return init.initialize(name, shape, FAN_IN, FAN_OUT, np.random.default_rng(seed), dtype)


def test_every_initializer_is_registered():
    assert set(INITIALIZERS.names()) == {"zeros", *EXPECTED}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_statistics_match_the_pytorch_formulas(name):
    std, bound = EXPECTED[name]
    w = draw(name)
    assert w.shape == SHAPE
    assert abs(w.mean()) < 4 * std / math.sqrt(w.size)
    assert w.std() == pytest.approx(std, rel=0.02)
    if bound is not None:
        assert np.abs(w).max() <= bound
        assert np.abs(w).max() > 0.99 * bound  # the whole interval is used, not a narrower one


def test_zeros_are_zeros():
    w = draw("zeros", np.float32)
    assert w.dtype == np.float32
    assert not w.any()


@pytest.mark.parametrize("name", INITIALIZERS.names())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(name, dtype):
    assert draw(name, dtype, shape=(3, 4)).dtype == dtype


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_same_rng_same_weights_other_seed_other_weights(name):
    np.testing.assert_array_equal(
        draw(name, seed=7, shape=(5, 6)), draw(name, seed=7, shape=(5, 6))
    )
    assert not np.array_equal(draw(name, seed=7, shape=(5, 6)), draw(name, seed=8, shape=(5, 6)))


def test_he_scale_depends_on_fan_in_only_and_xavier_on_both():
    rng = np.random.default_rng
    he_a = init.initialize("he_normal", (100, 100), 50, 10, rng(0), np.float64)
    he_b = init.initialize("he_normal", (100, 100), 50, 9999, rng(0), np.float64)
    np.testing.assert_array_equal(he_a, he_b)
    xa = init.initialize("xavier_normal", (100, 100), 50, 10, rng(0), np.float64)
    xb = init.initialize("xavier_normal", (100, 100), 50, 100, rng(0), np.float64)
    np.testing.assert_allclose(xa / xb, math.sqrt(150 / 60))


def test_unknown_initializer_lists_choices_and_suggests():
    with pytest.raises(
        ConfigError, match=r"'init' must be one of .*he_normal.*did you mean 'he_normal'"
    ):
        init.check_initializer("init", "he_nromal")
