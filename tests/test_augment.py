"""Data augmentation: the warps' math (bilinear interpolation against the plain loop, exact
shifts and rotations, the separable Gaussian against a direct convolution), the augmenter
(deterministic for a seed, labels stay with their images, inputs untouched), the config's
checks, and the training loop (augments training batches only; resume bit-identical)."""

import math

import numpy as np
import pytest
from test_resume import InterruptAt, metrics_without_time, weights
from tiny import TINY_MLP

from npnet.config import config_from_dict, load_config
from npnet.data.augment import Augmenter
from npnet.engine import runs
from npnet.engine.evaluate import load_run
from npnet.engine.experiment import build_experiment
from npnet.engine.loop import fit, resume
from npnet.engine.metrics import evaluate
from npnet.errors import ConfigError
from npnet.functional import augment as F

ALL = {"shift": 1.5, "rotate": 15.0, "scale": 0.1, "elastic": {"sigma": 2.0, "alpha": 6.0}}


def images(n=4, channels=2, height=9, width=8, seed=0):
    return np.random.default_rng(seed).random((n, channels, height, width), dtype=np.float32)


def test_bilinear_sample_equals_the_plain_loop_inside_and_outside_the_image():
    x = images()
    rng = np.random.default_rng(1)
    ys = rng.uniform(-3, 11, (4, 5, 6)).astype(np.float32)  # partly outside: clamped
    xs = rng.uniform(-3, 10, (4, 5, 6)).astype(np.float32)
    ours = F.bilinear_sample(x, ys, xs)
    assert ours.dtype == np.float32 and ours.shape == (4, 2, 5, 6)
    np.testing.assert_allclose(ours, F.bilinear_sample_loop(x, ys, xs), atol=1e-6)


def test_identity_grid_copies_and_integer_shift_moves_by_whole_pixels():
    x = images()
    np.testing.assert_array_equal(F.bilinear_sample(x, *F.identity_grid(4, 9, 8)), x)
    ys, xs = F.affine_grid(np.zeros(4), np.ones(4), np.tile([2.0, -1.0], (4, 1)), 9, 8)
    out = F.bilinear_sample(x, ys, xs)
    # content moves 2 down and 1 left; the rows it leaves repeat the border
    np.testing.assert_allclose(out[:, :, 2:, :-1], x[:, :, :-2, 1:], atol=1e-6)
    np.testing.assert_allclose(out[:, :, :2, :-1], x[:, :, :1, 1:].repeat(2, axis=2), atol=1e-6)


def test_a_quarter_turn_is_rot90_and_scale_two_reads_half_as_far():
    x = images(height=7, width=7)
    out = F.bilinear_sample(
        x, *F.affine_grid(np.full(4, math.pi / 2), np.ones(4), np.zeros((4, 2)), 7, 7)
    )
    np.testing.assert_allclose(out, np.rot90(x, k=1, axes=(2, 3)), atol=1e-5)
    ys, _ = F.affine_grid(np.zeros(1), np.full(1, 2.0), np.zeros((1, 2)), 7, 7)
    np.testing.assert_allclose(ys[0, :, 0], 3 + (np.arange(7) - 3) / 2, atol=1e-6)


def test_gaussian_smoothing_is_the_direct_zero_padded_convolution():
    sigma = 1.5
    radius = int(4 * sigma + 0.5)
    d = np.arange(-radius, radius + 1)
    kernel = np.exp(-(d**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    field = np.random.default_rng(2).uniform(-1, 1, (3, 10, 12)).astype(np.float32)
    direct = np.zeros_like(field, dtype=np.float64)
    for n in range(3):  # the plain 2-D convolution with the outer-product kernel
        padded = np.pad(field[n].astype(np.float64), radius)
        for i in range(10):
            for j in range(12):
                window = padded[i : i + 2 * radius + 1, j : j + 2 * radius + 1]
                direct[n, i, j] = np.sum(window * np.outer(kernel, kernel))
    np.testing.assert_allclose(F.smooth(field, sigma), direct, atol=1e-6)


def test_elastic_field_is_alpha_times_the_smoothed_noise():
    uniform = np.random.default_rng(3).uniform(-1, 1, (2, 5, 28, 28)).astype(np.float32)
    dy, dx = F.elastic_field(uniform, 4.0, 34.0)
    np.testing.assert_allclose(dy, 34 * F.smooth(uniform[0], 4.0), rtol=1e-5, atol=1e-5)
    assert dx.shape == (5, 28, 28) and 0.3 < np.abs(dx).mean() < 5  # a few pixels, smooth


def test_augmenter_is_deterministic_for_a_seed_and_leaves_its_input_alone():
    x = images(n=16, channels=1, height=28, width=28)
    before = x.copy()
    augment = Augmenter(**ALL)
    a = augment(x, np.random.default_rng(5))
    np.testing.assert_array_equal(a, augment(x, np.random.default_rng(5)))
    assert not np.array_equal(a, augment(x, np.random.default_rng(6)))
    assert not np.array_equal(a, x) and a.dtype == np.float32
    np.testing.assert_array_equal(x, before)
    # each image gets its own warp: the same image twice in a batch comes out differently
    twice = augment(np.concatenate([x[:1], x[:1]]), np.random.default_rng(5))
    assert not np.array_equal(twice[0], twice[1])
    np.testing.assert_array_equal(Augmenter()(x, np.random.default_rng(5)), x)


def test_labels_stay_with_their_images():
    # Image k is the constant k: any warp of it (border-clamped) is still k everywhere, so a
    # warp that mixed up the batch's order would show.
    x = np.broadcast_to(np.arange(32, dtype=np.float32)[:, None, None, None], (32, 1, 12, 12))
    out = Augmenter(**ALL)(np.ascontiguousarray(x), np.random.default_rng(0))
    np.testing.assert_allclose(out, x, atol=1e-5)


@pytest.mark.parametrize(
    "augment, message",
    [
        ({"shfit": 1}, r"data.augment: unknown key 'shfit'; did you mean 'shift'"),
        ({"rotate": 270}, r"data.augment.rotate: 'rotate' must be in \[0, 180\]"),
        ({"scale": 1.0}, r"data.augment.scale: 'scale' must be in \[0, 1\)"),
        ({"shift": "2px"}, "data.augment.shift: 'shift' must be a number"),
        ({"elastic": {"sigma": 0}}, r"data.augment.elastic.sigma: 'sigma' must be in \(0, inf\]"),
        ({"elastic": {"alpa": 3}}, "did you mean 'alpha'"),
        ([1, 2], "data.augment: expected a mapping of keys"),
    ],
)
def test_bad_augment_settings_are_config_errors(augment, message):
    raw = {"name": "a", "data": {"augment": augment}, "model": {"layers": ["flatten"]}}
    with pytest.raises(ConfigError, match=message):
        config_from_dict(raw, "c.yaml")


def test_augment_fills_its_defaults_and_round_trips():
    raw = {
        "name": "a",
        "data": {"augment": {"shift": 2, "elastic": {}}},
        "model": {"layers": ["flatten"]},
    }
    config = config_from_dict(raw)
    assert config.data.augment == {
        "shift": 2.0,
        "rotate": 0.0,
        "scale": 0.0,
        "elastic": {"sigma": 4.0, "alpha": 34.0},
    }


def test_augmenting_samples_that_are_not_images_is_refused(write_config):
    text = (
        "name: b\ndata: {dataset: blobs, validation: 0, augment: {shift: 1}}\n"
        "model: {layers: [{dense: {units: 3}}]}\n"
    )
    with pytest.raises(ConfigError, match=r"data.augment warps images .* these samples are \(2,\)"):
        build_experiment(load_config(write_config(text)))


AUGMENTED = TINY_MLP.replace(
    "normalize: scale}",
    "normalize: scale,\n"
    "       augment: {shift: 1, rotate: 10, scale: 0.1, elastic: {sigma: 1.0, alpha: 2.0}}}",
).replace("train: {epochs: 3,", "schedule: {name: cosine, t_max: 4}\ntrain: {epochs: 4,")


def test_training_is_reproducible_and_augmentation_changes_it(write_config, tmp_path):
    config = load_config(write_config(AUGMENTED))
    a, _ = fit(config, tmp_path / "a")
    b, _ = fit(config, tmp_path / "b")
    for key, value in weights(a).items():
        np.testing.assert_array_equal(value, weights(b)[key])
    plain, _ = fit(load_config(write_config(TINY_MLP)), tmp_path / "plain")
    assert not np.array_equal(weights(a)["1.W"], weights(plain)["1.W"])


def test_evaluation_never_augments(write_config, tmp_path):
    run_dir, summary = fit(load_config(write_config(AUGMENTED)), tmp_path)
    exp = load_run(run_dir)
    data = exp.dataset
    val = evaluate(exp.net, exp.loss, data.x_val, data.y_val, 1000, True)
    assert runs.read_metrics(run_dir)[-1]["val_loss"] == pytest.approx(val["loss"], rel=1e-6)
    test = evaluate(exp.net, exp.loss, data.x_test, data.y_test, 1000, True)
    assert summary["test_accuracy"] == test["accuracy"]


def test_resume_with_augmentation_is_bit_identical(write_config, tmp_path):
    config = load_config(write_config(AUGMENTED))
    straight, _ = fit(config, tmp_path / "a")
    broken, summary = fit(config, tmp_path / "b", InterruptAt(epoch=3, batch=5))
    assert summary["status"] == "interrupted" and summary["epochs_completed"] == 2
    assert resume(broken)["status"] == "completed"
    assert metrics_without_time(broken) == metrics_without_time(straight)
    for key, value in weights(straight).items():
        np.testing.assert_array_equal(value, weights(broken)[key])


def test_npnet_data_augment_draws_the_grid_and_times_an_epoch(write_config, tmp_path):
    from test_cli import assert_user_error, invoke

    out = tmp_path / "figs" / "grid.png"
    result = invoke("data", write_config(AUGMENTED), "--augment", "--out", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"\x89PNG")
    text = " ".join(result.stdout.split())  # rich wraps long lines
    assert "8 training images, each beside 7 warps" in text
    assert "Warping all 1,237 training images in batches of 32 took" in text
    assert_user_error(
        invoke("data", write_config(TINY_MLP), "--augment", "--out", out),
        "data.augment is not set",
    )


def test_augmented_samples_are_the_originals_and_their_warps(write_config):
    from npnet.tools.augmentation import augmented_samples

    config = load_config(write_config(AUGMENTED))
    result = augmented_samples(config, images=3, versions=2)
    exp = build_experiment(config)
    assert result["grid"].shape == (3, 3, 1, 8, 8)
    np.testing.assert_array_equal(result["grid"][:, 0], exp.dataset.x_train[:3])
    np.testing.assert_array_equal(result["labels"], exp.dataset.y_train[:3])
    assert not np.array_equal(result["grid"][:, 1], result["grid"][:, 2])
    assert result["cpu_seconds_per_epoch"] > 0
