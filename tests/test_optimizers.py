"""Optimizers and gradient clipping: hand-computed steps, resuming, dtypes, argument checks."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from npnet.errors import ConfigError
from npnet.optim import optimizers  # noqa: F401  (registers the optimizers)
from npnet.optim.clip import clip_grad_norm
from npnet.registry import OPTIMIZERS

# Powers of two, so plain SGD and momentum steps are exact in binary floating point.
P0 = [1.0, -2.0]
G1 = [0.5, 1.0]
G2 = [-1.0, 0.25]

# Arguments that give every optimizer non-trivial state and weight decay.
BUSY_ARGS = {
    "sgd": {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01},
    "momentum": {"lr": 0.1, "weight_decay": 0.01},
    "nesterov": {"lr": 0.1, "weight_decay": 0.01},
    "adagrad": {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.01},
    "rmsprop": {"lr": 0.01, "momentum": 0.5, "weight_decay": 0.01},
    "adam": {"lr": 0.01, "weight_decay": 0.01},
    "adamw": {"lr": 0.01},
}


def two_steps(name: str, args: dict) -> np.ndarray:
    params = {"w": np.array(P0)}
    opt = OPTIMIZERS.build(name, args)
    opt.step(params, {"w": np.array(G1)})
    after_one = params["w"].copy()
    opt.step(params, {"w": np.array(G2)})
    return np.stack([after_one, params["w"]])


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        # p − lr·g: [1 − 0.25, −2 − 0.5], then [0.75 + 0.5, −2.5 − 0.125]
        ("sgd", {"lr": 0.5}, [[0.75, -2.5], [1.25, -2.625]]),
        # g + λp = [1, 0], then [−0.75, −0.75] (p = [0.5, −2])
        ("sgd", {"lr": 0.5, "weight_decay": 0.5}, [[0.5, -2.0], [0.875, -1.625]]),
        # v = g1 = [0.5, 1]; then v = 0.5·v + g2 = [−0.75, 0.75]
        ("momentum", {"lr": 0.5, "momentum": 0.5}, [[0.75, -2.5], [1.125, -2.875]]),
        # v as above; steps g + μv = [0.75, 1.5], then [−1.375, 0.625]
        ("nesterov", {"lr": 0.5, "momentum": 0.5}, [[0.625, -2.75], [1.3125, -3.0625]]),
        (
            "sgd",
            {"lr": 0.5, "momentum": 0.5, "nesterov": True},
            [[0.625, -2.75], [1.3125, -3.0625]],
        ),
    ],
)
def test_sgd_family_two_exact_steps(name, args, expected):
    np.testing.assert_array_equal(two_steps(name, args), expected)


def test_adam_two_steps_by_hand():
    lr, eps = 0.1, 1e-8
    # Step 1: m̂ = g1 and v̂ = g1², so the step is lr·g1 / (|g1| + ε).
    step1 = np.array([1.0 - lr * 0.5 / (0.5 + eps), -2.0 - lr * 1.0 / (1.0 + eps)])
    # Step 2: m = 0.9·0.1·g1 + 0.1·g2, v = 0.999·0.001·g1² + 0.001·g2²,
    # bias corrections 1 − 0.9² = 0.19 and 1 − 0.999² = 0.001999.
    m_hat = np.array([-0.055, 0.115]) / 0.19
    v_hat = np.array([0.00124975, 0.0010615]) / 0.001999
    step2 = step1 - lr * m_hat / (np.sqrt(v_hat) + eps)
    np.testing.assert_allclose(two_steps("adam", {"lr": lr}), [step1, step2], rtol=1e-13)


def test_adamw_decays_the_parameter_not_the_gradient():
    lr, wd, eps = 0.1, 0.5, 1e-8
    # p·(1 − lr·λ) = 0.95·p, then the plain Adam step on g1.
    step1 = np.array([0.95 - lr * 0.5 / (0.5 + eps), -1.9 - lr * 1.0 / (1.0 + eps)])
    np.testing.assert_allclose(two_steps("adamw", {"lr": lr, "weight_decay": wd})[0], step1)
    # Negative control: the same decay coupled into the gradient (adam) gives another result.
    coupled = two_steps("adam", {"lr": lr, "weight_decay": wd})[0]
    assert not np.allclose(coupled, step1)


def test_every_registered_optimizer_is_covered():
    assert set(BUSY_ARGS) == set(OPTIMIZERS.names())


def _run(opt, params, grads):
    for step_grads in grads:
        opt.step(params, step_grads)


def _problem(dtype=np.float64, steps=10):
    rng = np.random.default_rng(0)
    params = {"0.W": rng.standard_normal((3, 4)).astype(dtype), "0.b": np.zeros(4, dtype)}
    grads = [{k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()}
             for _ in range(steps)]  # fmt: skip
    return params, grads


@pytest.mark.parametrize("name", sorted(BUSY_ARGS))
def test_resume_from_checkpoint_continues_exactly(name, tmp_path):
    params, grads = _problem()
    straight = {k: v.copy() for k, v in params.items()}
    _run(OPTIMIZERS.build(name, BUSY_ARGS[name]), straight, grads)

    resumed = {k: v.copy() for k, v in params.items()}
    first = OPTIMIZERS.build(name, BUSY_ARGS[name])
    _run(first, resumed, grads[:5])
    np.savez(tmp_path / "opt.npz", **first.state_dict())
    second = OPTIMIZERS.build(name, first.get_config())
    with np.load(tmp_path / "opt.npz") as checkpoint:
        second.load_state_dict(dict(checkpoint))
    _run(second, resumed, grads[5:])

    for key in params:
        np.testing.assert_array_equal(resumed[key], straight[key])


@pytest.mark.parametrize("name", sorted(BUSY_ARGS))
def test_resume_without_state_diverges(name):
    """Negative control for the resume test: a fresh optimizer does not continue the run."""
    params, grads = _problem()
    straight = {k: v.copy() for k, v in params.items()}
    _run(OPTIMIZERS.build(name, BUSY_ARGS[name]), straight, grads)
    fresh = {k: v.copy() for k, v in params.items()}
    _run(OPTIMIZERS.build(name, BUSY_ARGS[name]), fresh, grads[:5])
    _run(OPTIMIZERS.build(name, BUSY_ARGS[name]), fresh, grads[5:])
    assert not np.array_equal(fresh["0.W"], straight["0.W"])


@pytest.mark.parametrize("name", sorted(BUSY_ARGS))
def test_float32_stays_float32_and_updates_in_place(name):
    params, grads = _problem(np.float32, steps=3)
    arrays = dict(params)
    opt = OPTIMIZERS.build(name, BUSY_ARGS[name])
    opt.lr = np.float64(opt.lr)  # what a schedule may hand over
    _run(opt, params, grads)
    for key, param in params.items():
        assert param is arrays[key]
        assert param.dtype == np.float32
        for slot, value in opt.state[key].items():
            assert value.dtype == np.float32, f"state {key}/{slot}"
    reference, grads64 = _problem(np.float64, steps=3)
    _run(OPTIMIZERS.build(name, BUSY_ARGS[name]), reference, grads64)
    np.testing.assert_allclose(params["0.W"], reference["0.W"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(BUSY_ARGS))
def test_gradients_are_not_modified_or_aliased(name):
    params, grads = _problem(steps=2)
    kept = [{k: v.copy() for k, v in g.items()} for g in grads]
    opt = OPTIMIZERS.build(name, BUSY_ARGS[name])
    opt.step(params, grads[0])
    for key in params:
        np.testing.assert_array_equal(grads[0][key], kept[0][key])
    # A layer reuses its gradient buffers; the optimizer's state must not follow them.
    state_before = {k: {s: v.copy() for s, v in slots.items()} for k, slots in opt.state.items()}
    for g in grads[0].values():
        g[...] = 1e6
    for key, slots in opt.state.items():
        for slot, value in slots.items():
            np.testing.assert_array_equal(value, state_before[key][slot])


@pytest.mark.parametrize("name", sorted(BUSY_ARGS))
def test_config_round_trip(name):
    opt = OPTIMIZERS.build(name, BUSY_ARGS[name])
    assert opt.name == name
    assert OPTIMIZERS.build(name, opt.get_config()).get_config() == opt.get_config()


def test_betas_from_yaml_list():
    opt = OPTIMIZERS.build("adam", {"betas": [0.5, 0.75]})
    assert opt.betas == (0.5, 0.75)


def test_variants_fix_their_momentum_flavour():
    assert OPTIMIZERS.build("momentum", {}).nesterov is False
    assert OPTIMIZERS.build("nesterov", {}).nesterov is True
    assert "nesterov" not in OPTIMIZERS.parameters("nesterov")


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("sgd", {"lr": -1.0}, "'lr' must be in (0, inf], got -1.0"),
        ("adam", {"lr": 0}, "'lr' must be in (0, inf], got 0.0"),
        ("sgd", {"lr": "fast"}, "'lr' must be a number, got 'fast'"),
        ("sgd", {"momentum": 1.0}, "'momentum' must be in [0, 1), got 1.0"),
        ("momentum", {"momentum": -0.1}, "'momentum' must be in [0, 1), got -0.1"),
        ("sgd", {"nesterov": True}, "'momentum' must be > 0 when 'nesterov' is true, got 0.0"),
        ("nesterov", {"momentum": 0.0}, "'momentum' must be > 0 when 'nesterov' is true"),
        ("sgd", {"nesterov": "yes"}, "'nesterov' must be true or false, got 'yes'"),
        ("sgd", {"weight_decay": -0.1}, "'weight_decay' must be in [0, inf], got -0.1"),
        ("adam", {"betas": [0.9, 1.0]}, "'betas[1]' must be in [0, 1), got 1.0"),
        ("adamw", {"betas": [-0.1, 0.9]}, "'betas[0]' must be in [0, 1), got -0.1"),
        ("adam", {"betas": 0.9}, "'betas' must be a pair [beta1, beta2], got 0.9"),
        ("adam", {"betas": [0.9, 0.99, 0.999]}, "'betas' must be a pair"),
        ("adam", {"eps": 0.0}, "'eps' must be in (0, inf], got 0.0"),
        ("adamw", {"weight_decay": -1}, "'weight_decay' must be in [0, inf], got -1.0"),
        ("rmsprop", {"alpha": 1.0}, "'alpha' must be in [0, 1), got 1.0"),
        ("adagrad", {"lr_decay": -1}, "'lr_decay' must be in [0, inf], got -1.0"),
        ("adagrad", {"initial_accumulator_value": -1}, "'initial_accumulator_value' must be in"),
        ("adam", {"beta": [0.9, 0.99]}, "unknown key 'beta'; did you mean 'betas'?"),
    ],
)
def test_invalid_arguments_name_the_key(name, args, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        OPTIMIZERS.build(name, args)


def test_clip_grad_norm_by_hand():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[0.0, 4.0]])}
    a = grads["a"]
    assert clip_grad_norm(grads, 1.0) == 5.0
    assert grads["a"] is a
    scale = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(grads["a"], [3.0 * scale, 0.0], rtol=1e-15)
    np.testing.assert_allclose(grads["b"], [[0.0, 4.0 * scale]], rtol=1e-15)


def test_clip_grad_norm_leaves_small_gradients_alone():
    grads = {"a": np.array([3.0, 0.0], np.float32), "b": np.array([[0.0, 4.0]], np.float32)}
    assert clip_grad_norm(grads, 10.0) == 5.0
    np.testing.assert_array_equal(grads["a"], [3.0, 0.0])
    np.testing.assert_array_equal(grads["b"], [[0.0, 4.0]])


def test_clip_grad_norm_float32_and_zero_gradients():
    grads = {"a": np.full(4, 10.0, np.float32)}
    norm = clip_grad_norm(grads, 2.0)
    assert norm == 20.0
    assert grads["a"].dtype == np.float32
    assert math.isclose(float(np.linalg.norm(grads["a"])), 2.0, rel_tol=1e-6)
    zeros = {"a": np.zeros(3)}
    assert clip_grad_norm(zeros, 1.0) == 0.0
    np.testing.assert_array_equal(zeros["a"], 0.0)
    assert clip_grad_norm({}, 1.0) == 0.0


@pytest.mark.parametrize("max_norm", [0.0, -1.0, "big"])
def test_clip_grad_norm_rejects_bad_max_norm(max_norm):
    with pytest.raises(ConfigError, match="'max_norm' must"):
        clip_grad_norm({"a": np.ones(2)}, max_norm)
