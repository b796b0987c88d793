"""Initializers: registered, the PyTorch scales on a large draw (by formula and against
torch.nn.init), parameters checked, dtype kept, deterministic; bias_init on dense and conv2d."""

from __future__ import annotations

import math

import numpy as np
import pytest

from npnet.errors import ConfigError
from npnet.nn import init
from npnet.registry import INITIALIZERS, LAYERS

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
    assert set(INITIALIZERS.names()) == {"zeros", "constant", *EXPECTED}


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


# spec -> (std, uniform bound or None), with FAN_IN = 400, FAN_OUT = 500
WITH_PARAMETERS = [
    ({"name": "normal", "std": 1.0}, 1.0, None),
    ({"name": "normal", "std": 0.3, "mean": 2.0}, 0.3, None),
    ({"name": "uniform", "limit": 0.5}, 0.5 / math.sqrt(3), 0.5),
    (
        {"name": "xavier_uniform", "gain": 5 / 3},
        5 / 3 * math.sqrt(2 / 900),
        5 / 3 * math.sqrt(6 / 900),
    ),
    ({"name": "xavier_normal", "gain": 2.0}, 2 * math.sqrt(2 / 900), None),
    ({"name": "he_normal", "nonlinearity": "tanh"}, 5 / 3 / math.sqrt(400), None),
    ({"name": "he_normal", "mode": "fan_out"}, math.sqrt(2 / 500), None),
    ({"name": "he_uniform", "a": 0.2}, math.sqrt(2 / 1.04) / 20, math.sqrt(3 * 2 / 1.04) / 20),
    (
        {"name": "he_uniform", "nonlinearity": "selu", "mode": "fan_out"},
        0.75 / math.sqrt(500),
        0.75 * math.sqrt(3 / 500),
    ),
    ({"name": "he_normal", "nonlinearity": "sigmoid"}, 1 / 20, None),
]


@pytest.mark.parametrize("spec, std, bound", WITH_PARAMETERS, ids=lambda v: str(v))
def test_parameterized_statistics_match_their_formulas(spec, std, bound):
    w = draw(spec)
    mean = spec.get("mean", 0.0)
    assert abs(w.mean() - mean) < 4 * std / math.sqrt(w.size)
    assert w.std() == pytest.approx(std, rel=0.02)
    if bound is not None:
        assert np.abs(w).max() <= bound
        assert np.abs(w).max() > 0.99 * bound


def test_defaults_are_the_short_forms_and_the_pytorch_defaults():
    for name in INITIALIZERS.names():
        np.testing.assert_array_equal(draw({"name": name}, shape=(4, 5)), draw(name, shape=(4, 5)))
    relu = draw({"name": "he_normal", "nonlinearity": "relu"}, shape=(4, 5))
    np.testing.assert_array_equal(relu, draw("he_normal", shape=(4, 5)))  # leaky_relu, a = 0


def test_constant_fills_the_value():
    w = draw({"name": "constant", "value": 0.1}, np.float32, shape=(3, 2))
    np.testing.assert_array_equal(w, np.full((3, 2), 0.1, np.float32))


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"name": "normal", "sd": 1.0}, r"'init' \(normal\): unknown key 'sd'; did you mean 'std'"),
        ({"name": "normal", "std": -1}, r"'init' \(normal\): 'std' must be in \[0, inf\]"),
        ({"name": "uniform", "limit": "big"}, "'limit' must be a number"),
        ({"name": "he_normal", "mode": "fan_avg"}, "'mode' must be one of fan_in, fan_out"),
        ({"name": "he_uniform", "nonlinearity": "rel"}, "did you mean 'relu'"),
        ({"name": "lecun_normal", "gain": 2}, "valid keys for initializer 'lecun_normal': none"),
        ({"std": 1.0}, "'init' needs a 'name' in its mapping"),
        ({"name": "kaiming"}, "'init' must be one of"),
    ],
)
def test_bad_parameters_are_config_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        init.check_initializer("init", spec)


@pytest.mark.parametrize(
    "layer, args, fans",
    [
        ("dense", {"units": 300}, (200, 300)),
        ("conv2d", {"filters": 30, "kernel": 5}, (8 * 25, 30 * 25)),
    ],
)
def test_bias_init_draws_the_bias_with_the_layers_fans(layer, args, fans):
    in_shape = (200,) if layer == "dense" else (8, 12, 12)
    spec = {"name": "he_uniform", "mode": "fan_out"}
    built = LAYERS.build(layer, {**args, "bias_init": spec})
    built.build(in_shape, np.random.default_rng(0), np.float32)
    b = built.params["b"]
    assert b.dtype == np.float32 and b.shape == (
        built.params["W"].shape[-1 if layer == "dense" else 0],
    )
    assert np.abs(b).max() <= math.sqrt(6 / fans[1]) and b.std() > 0
    assert built.get_config()["bias_init"] == spec
    # the default keeps zeros and draws nothing more: the weights of older configs are unchanged
    plain = LAYERS.build(layer, args)
    rng = np.random.default_rng(0)
    plain.build(in_shape, rng, np.float32)
    assert not plain.params["b"].any()
    np.testing.assert_array_equal(plain.params["W"], built.params["W"])
    only_weights = np.random.default_rng(0)
    only_weights.standard_normal(plain.params["W"].shape, dtype=np.float32)
    assert rng.bit_generator.state == only_weights.bit_generator.state


def test_a_config_states_nielsens_n01_weights_and_biases():
    from npnet.config import config_from_dict

    layer = {
        "dense": {
            "units": 30,
            "init": {"name": "normal", "std": 1.0},
            "bias_init": {"name": "normal", "std": 1.0},
        }
    }
    config = config_from_dict({"name": "n", "model": {"layers": ["flatten", layer]}})
    assert config.model.layers[1] == layer
    with pytest.raises(
        ConfigError, match=r"model.layers\[0\].dense: 'bias_init' \(normal\): 'std'"
    ):
        config_from_dict(
            {
                "name": "n",
                "model": {
                    "layers": [{"dense": {"units": 3, "bias_init": {"name": "normal", "std": -2}}}]
                },
            }
        )


TORCH_CASES = [
    ("normal", {"std": 1.0}, lambda t, nn: nn.normal_(t, std=1.0)),
    ("uniform", {"limit": 0.5}, lambda t, nn: nn.uniform_(t, -0.5, 0.5)),
    ("xavier_uniform", {"gain": 5 / 3}, lambda t, nn: nn.xavier_uniform_(t, gain=5 / 3)),
    ("xavier_normal", {"gain": 2.0}, lambda t, nn: nn.xavier_normal_(t, gain=2.0)),
    ("he_uniform", {}, lambda t, nn: nn.kaiming_uniform_(t)),
    ("he_normal", {}, lambda t, nn: nn.kaiming_normal_(t)),
    (
        "he_normal",
        {"nonlinearity": "tanh", "mode": "fan_out"},
        lambda t, nn: nn.kaiming_normal_(t, mode="fan_out", nonlinearity="tanh"),
    ),
    (
        "he_uniform",
        {"a": 0.2, "nonlinearity": "leaky_relu"},
        lambda t, nn: nn.kaiming_uniform_(t, a=0.2, nonlinearity="leaky_relu"),
    ),
    ("constant", {"value": 0.1}, lambda t, nn: nn.constant_(t, 0.1)),
]


@pytest.mark.parametrize(
    "name, args, reference", TORCH_CASES, ids=[f"{c[0]}{c[1]}" for c in TORCH_CASES]
)
@pytest.mark.parametrize("layout", ["dense", "conv"])
def test_statistics_agree_with_torch_nn_init(name, args, reference, layout):
    """The same spread as torch.nn.init on a tensor of PyTorch's layout (Linear (out, in),
    Conv2d (F, C, kh, kw)), where PyTorch computes the fans itself."""
    torch = pytest.importorskip("torch")
    if layout == "dense":
        ours_shape, torch_shape, fans = (400, 500), (500, 400), (400, 500)
    else:
        ours_shape = torch_shape = (64, 32, 5, 5)
        fans = (32 * 25, 64 * 25)
    spec = {"name": name, **args}
    ours = init.initialize(spec, ours_shape, *fans, np.random.default_rng(0), np.float64)
    theirs = torch.empty(torch_shape, dtype=torch.float64)
    torch.manual_seed(0)
    reference(theirs, torch.nn.init)
    theirs = theirs.numpy()
    assert ours.std() == pytest.approx(theirs.std(), rel=0.03, abs=1e-12)
    assert ours.mean() == pytest.approx(theirs.mean(), abs=4 * max(theirs.std(), 1e-12) / 100)
    if "uniform" in name:  # the same interval, used to its ends
        assert np.abs(ours).max() == pytest.approx(np.abs(theirs).max(), rel=0.01)
