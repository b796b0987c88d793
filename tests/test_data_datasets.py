"""Registered datasets and load_dataset: options, splits, normalization, dtypes and errors."""

import numpy as np
import pytest

from npnet.data import datasets
from npnet.data.dataset import Dataset, apply_normalization, fit_normalization, load_dataset
from npnet.errors import ConfigError
from npnet.registry import DATASETS

SMALL = ["digits", "linear", "blobs", "moons"]


def rows(x):
    """The rows of a 2-D array as a set of tuples, to compare splits as sets of examples."""
    return set(map(tuple, np.asarray(x).tolist()))


# ---- the registry --------------------------------------------------------------------------


def test_all_datasets_are_registered():
    assert {"mnist", "digits", "linear", "blobs", "moons"} <= set(DATASETS.names())
    assert DATASETS.get("moons") is datasets.moons


def test_option_typo_suggests_the_option():
    with pytest.raises(ConfigError, match="unknown key 'nosie'; did you mean 'noise'"):
        DATASETS.build("moons", {"nosie": 1})
    with pytest.raises(ConfigError, match=r"did you mean 'n_train'\? \(valid keys for dataset"):
        load_dataset("blobs", {"n_trian": 10})


def test_dataset_name_typo_suggests_the_name():
    with pytest.raises(ConfigError, match="unknown dataset 'mnsit'; did you mean 'mnist'"):
        load_dataset("mnsit")


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("moons", {"n_train": 0}, "'n_train' must be a positive int, got 0"),
        ("moons", {"noise": -0.5}, r"'noise' must be in \[0, inf\], got -0.5"),
        ("linear", {"n_features": 1.5}, "'n_features' must be a positive int, got 1.5"),
        ("blobs", {"cluster_std": 0}, r"'cluster_std' must be in \(0, inf\], got 0.0"),
        ("blobs", {"seed": -1}, "'seed' must be an int >= 0, got -1"),
        ("digits", {"seed": 1}, "unknown key 'seed' .*valid keys for dataset 'digits': none"),
    ],
)
def test_bad_option_values(name, options, message):
    with pytest.raises(ConfigError, match=message):
        DATASETS.build(name, options)


# ---- the builders --------------------------------------------------------------------------


def test_digits_fixed_stratified_split():
    splits = DATASETS.build("digits")
    assert splits.x_train.shape == (1437, 1, 8, 8) and splits.x_test.shape == (360, 1, 8, 8)
    assert splits.x_train.max() == 16 and splits.image_max == 16
    # Stratified: every class has 35-37 of the 360 test images (the full set has 174-183).
    assert np.bincount(splits.y_test).min() >= 35 and np.bincount(splits.y_test).max() <= 37
    np.testing.assert_array_equal(DATASETS.build("digits").y_test, splits.y_test)


def test_linear_is_exactly_linear_without_noise():
    splits = DATASETS.build("linear", {"n_features": 3, "noise": 0.0, "seed": 4})
    w, b = np.array(splits.info["w_true"]), splits.info["b_true"]
    assert w.shape == (3,) and isinstance(b, float)
    np.testing.assert_allclose(splits.y_train[:, 0], splits.x_train @ w + b, atol=1e-12)
    np.testing.assert_allclose(splits.y_test[:, 0], splits.x_test @ w + b, atol=1e-12)


def test_linear_least_squares_recovers_the_true_parameters():
    ds = load_dataset("linear", {"n_train": 500, "n_features": 2, "noise": 0.1, "seed": 1})
    design = np.hstack([ds.x_train, np.ones((len(ds.x_train), 1), np.float32)])
    solution = np.linalg.lstsq(design, ds.y_train, rcond=None)[0][:, 0]
    np.testing.assert_allclose(solution[:2], ds.info["w_true"], atol=0.02)
    assert solution[2] == pytest.approx(ds.info["b_true"], abs=0.02)


def test_blobs_options_shape_the_data():
    splits = DATASETS.build("blobs", {"n_train": 40, "n_test": 8, "n_features": 5, "centers": 4})
    assert splits.x_train.shape == (40, 5) and splits.x_test.shape == (8, 5)
    assert splits.num_classes == 4 and set(splits.y_train.tolist()) == {0, 1, 2, 3}
    assert np.array(splits.info["centers"]).shape == (4, 5)


@pytest.mark.parametrize("name", ["linear", "blobs", "moons"])
def test_synthetic_sets_follow_their_seed(name):
    first, again = DATASETS.build(name, {"seed": 3}), DATASETS.build(name, {"seed": 3})
    other = DATASETS.build(name, {"seed": 4})
    np.testing.assert_array_equal(first.x_train, again.x_train)
    np.testing.assert_array_equal(first.y_test, again.y_test)
    assert not np.array_equal(first.x_train, other.x_train)


# ---- load_dataset: the Dataset it returns --------------------------------------------------


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("normalize", ["none", "scale", "standard"])
def test_dtypes_shapes_and_layout(name, normalize):
    ds = load_dataset(name, validation=0.25, normalize=normalize)
    raw = DATASETS.build(name)
    assert isinstance(ds, Dataset) and ds.name == name
    for x in (ds.x_train, ds.x_val, ds.x_test):
        assert x.dtype == np.float32 and x.flags.c_contiguous and x.shape[1:] == ds.input_shape
    assert ds.input_shape == raw.x_train.shape[1:]
    assert len(ds.x_train) + len(ds.x_val) == len(raw.x_train)
    assert len(ds.x_val) == round(0.25 * len(raw.x_train))
    assert len(ds.x_test) == len(raw.x_test)
    if name == "linear":
        assert ds.task == "regression" and ds.num_classes is None
        assert ds.y_train.dtype == np.float32 and ds.y_train.shape == (len(ds.x_train), 1)
    else:
        assert ds.task == "classification" and ds.num_classes == raw.num_classes
        assert ds.y_train.dtype == np.int64 and ds.y_train.shape == (len(ds.x_train),)
        assert ds.y_val.dtype == ds.y_test.dtype == np.int64


@pytest.mark.parametrize("validation", [0, 0.0])
def test_no_validation_gives_empty_arrays_and_keeps_order(validation):
    ds = load_dataset("digits", validation=validation)
    raw = DATASETS.build("digits")
    assert ds.x_val.shape == (0, 1, 8, 8) and ds.x_val.dtype == np.float32
    assert ds.y_val.shape == (0,) and ds.y_val.dtype == np.int64
    np.testing.assert_array_equal(ds.x_train, raw.x_train)
    np.testing.assert_array_equal(ds.y_train, raw.y_train)
    assert repr(ds) == (
        "Dataset('digits', train=(1437, 1, 8, 8), val=(0, 1, 8, 8), test=(360, 1, 8, 8), "
        "classification, classes=10, normalization='none')"
    )


def test_info_is_carried_over():
    ds = load_dataset("linear", {"seed": 2})
    assert ds.info == DATASETS.build("linear", {"seed": 2}).info


# ---- load_dataset: validation split and train_size -----------------------------------------


def test_validation_split_is_deterministic_disjoint_and_complete():
    options = {"n_train": 100, "n_test": 10, "noise": 0.0}
    raw = DATASETS.build("linear", options)
    ds = load_dataset("linear", options, validation=30, seed=7)
    same = load_dataset("linear", options, validation=30, seed=7)
    other = load_dataset("linear", options, validation=30, seed=8)
    train, val = rows(ds.x_train), rows(ds.x_val)
    assert len(train) == 70 and len(val) == 30
    assert not train & val
    assert train | val == rows(raw.x_train.astype(np.float32))
    np.testing.assert_array_equal(ds.x_val, same.x_val)
    assert rows(other.x_val) != val
    # Labels travel with their inputs, and the test split is untouched.
    w, b = np.array(raw.info["w_true"]), raw.info["b_true"]
    np.testing.assert_allclose(ds.y_val[:, 0], ds.x_val @ w + b, atol=1e-5)
    np.testing.assert_array_equal(ds.x_test, raw.x_test.astype(np.float32))


def test_train_size_keeps_a_subset_of_the_training_part():
    options = {"n_train": 100}
    full = load_dataset("moons", options, validation=20, seed=1)
    small = load_dataset("moons", options, validation=20, train_size=15, seed=1)
    assert len(small.x_train) == 15 and len(small.y_train) == 15
    assert rows(small.x_train) <= rows(full.x_train)
    np.testing.assert_array_equal(small.x_val, full.x_val)
    just_subset = load_dataset("moons", options, train_size=100)
    assert len(just_subset.x_train) == 100 and len(just_subset.x_val) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"validation": -1}, r"'validation' must be an int >= 0 or a fraction in \[0, 1\), got -1"),
        ({"validation": 1.5}, r"'validation' must be .* got 1.5"),
        ({"validation": "0.1"}, r"'validation' must be .* got '0.1'"),
        ({"validation": True}, r"'validation' must be .* got True"),
        ({"validation": 200}, "'validation' must leave training examples: 200 of 200 asked"),
        ({"validation": 0.001}, "'validation' 0.001 of 200 training examples rounds to 0"),
        ({"train_size": 0}, "'train_size' must be a positive int, got 0"),
        (
            {"validation": 50, "train_size": 151},
            r"'train_size' must be at most 150 \(the training examples left after the "
            r"validation split\), got 151",
        ),
        ({"normalize": "std"}, "'normalize' must be one of none, scale, standard, got 'std'"),
        ({"normalize": "standardize"}, "did you mean 'standard'"),
        ({"seed": -2}, "'seed' must be an int >= 0, got -2"),
    ],
)
def test_bad_arguments_name_the_key(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        load_dataset("linear", {"n_train": 200}, **kwargs)


def test_options_must_be_a_mapping():
    with pytest.raises(ConfigError, match=r"'options' for dataset 'moons' must be a mapping"):
        load_dataset("moons", [("noise", 0.1)])


# ---- normalization -------------------------------------------------------------------------

TABULAR_TRAIN = np.array([[0.0, 10.0], [2.0, 10.0], [4.0, 10.0]])
TABULAR_TEST = np.array([[8.0, 12.0]])


def test_tabular_scale_is_per_feature_min_max_of_train():
    norm = fit_normalization("scale", TABULAR_TRAIN, image_max=None)
    # The constant second feature keeps a scale of 1 instead of dividing by zero.
    assert norm == {"method": "scale", "shift": [0.0, 10.0], "scale": [4.0, 1.0]}
    np.testing.assert_array_equal(
        apply_normalization(TABULAR_TRAIN, norm), [[0, 0], [0.5, 0], [1, 0]]
    )
    np.testing.assert_array_equal(apply_normalization(TABULAR_TEST, norm), [[2.0, 2.0]])


def test_tabular_standard_is_scale_then_train_mean_and_std():
    norm = fit_normalization("standard", TABULAR_TRAIN, image_max=None)
    # Scaled first column: 0, 0.5, 1 → mean 0.5, std sqrt(1/6); the constant column: 0, 0.
    std = np.sqrt(1 / 6)
    assert norm["mean"] == [0.5, 0.0]
    np.testing.assert_allclose(norm["std"], [std, 1.0])
    np.testing.assert_allclose(norm["shift"], [2.0, 10.0])
    np.testing.assert_allclose(norm["scale"], [4 * std, 1.0])
    np.testing.assert_allclose(apply_normalization(TABULAR_TEST, norm), [[6 / (4 * std), 2.0]])


def test_image_statistics_are_scalars():
    x = np.array([0, 255, 51, 102], dtype=np.uint8).reshape(2, 1, 1, 2)
    assert fit_normalization("scale", x, image_max=255.0) == {
        "method": "scale",
        "shift": 0.0,
        "scale": 255.0,
    }
    norm = fit_normalization("standard", x, image_max=255.0)
    # x / 255 = 0, 1, 0.2, 0.4 → mean 0.4, std sqrt((0.16 + 0.36 + 0.04 + 0) / 4) = sqrt(0.14)
    assert norm["mean"] == pytest.approx(0.4) and norm["std"] == pytest.approx(np.sqrt(0.14))
    assert norm["shift"] == pytest.approx(102.0)
    out = apply_normalization(x, norm)
    assert out.shape == (2, 1, 1, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out.ravel(), (np.array([0, 1, 0.2, 0.4]) - 0.4) / np.sqrt(0.14))


def test_image_statistics_over_many_blocks_match_numpy():
    x = np.random.default_rng(0).integers(0, 256, (3000, 1, 28, 28), dtype=np.uint8)
    norm = fit_normalization("standard", x, image_max=255.0)
    assert norm["mean"] == pytest.approx(x.mean() / 255, rel=1e-12)
    assert norm["std"] == pytest.approx(x.std() / 255, rel=1e-12)


def test_statistics_come_from_the_training_part_only():
    kwargs = {"validation": 0.3, "seed": 5}
    plain = load_dataset("blobs", normalize="none", **kwargs)
    ds = load_dataset("blobs", normalize="standard", **kwargs)
    # min-max scaling then standardizing is, in total, standardizing by the training part's
    # own mean and std.
    mean = plain.x_train.mean(axis=0, dtype=np.float64)
    std = plain.x_train.std(axis=0, dtype=np.float64)
    np.testing.assert_allclose(ds.normalization["shift"], mean, rtol=1e-6)
    np.testing.assert_allclose(ds.normalization["scale"], std, rtol=1e-6)
    for split in ("x_train", "x_val", "x_test"):
        expected = (getattr(plain, split) - mean) / std
        np.testing.assert_allclose(getattr(ds, split), expected, rtol=1e-5, atol=1e-5)
    # The whole training split (validation included) has other statistics: they were not used.
    whole = np.vstack([plain.x_train, plain.x_val]).mean(axis=0)
    assert not np.allclose(whole, mean, rtol=1e-3)


def test_digits_scale_divides_by_16():
    ds = load_dataset("digits", normalize="scale")
    raw = DATASETS.build("digits")
    np.testing.assert_allclose(ds.x_test, raw.x_test / 16.0)
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
