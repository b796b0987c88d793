"""conv2d: exact values by hand, the im2col implementation against the plain loops of
npnet.functional.reference (tests/test_reference.py: on random shapes too), gradient
checks with a negative control, dtypes, configs and the errors a wrong config gets."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from npnet.errors import ConfigError
from npnet.functional import conv as F
from npnet.functional import conv_columns as columns
from npnet.functional import conv_pool, conv_shifted, reference
from npnet.nn import conv
from npnet.registry import LAYERS
from npnet.tools.gradcheck import TOLERANCE, check_layer

X3 = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # [[1 2 3] [4 5 6] [7 8 9]]
W2 = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])


def built(in_shape, dtype=np.float64, seed=0, **args):
    layer = LAYERS.build("conv2d", args)
    layer.build(in_shape, np.random.default_rng(seed), dtype)
    return layer


def test_registered():
    assert LAYERS.get("conv2d") is conv.Conv2D


def test_forward_by_hand_stride_1_no_padding():
    out = F.conv2d(X3, W2, np.array([0.5]))
    # [1 2; 4 5]·[1 2; 3 4] = 1 + 4 + 12 + 20 = 37, and so on along the windows
    np.testing.assert_array_equal(out, [[[[37.5, 47.5], [67.5, 77.5]]]])


def test_forward_by_hand_stride_2_padding_1():
    out = F.conv2d(X3, W2, None, stride=2, padding=1)
    # Padded 5x5, windows at rows/columns 0 and 2: [0 0; 0 1], [0 0; 2 3], [0 4; 0 7], [5 6; 8 9]
    np.testing.assert_array_equal(out, [[[[4.0, 18.0], [36.0, 77.0]]]])


def test_backward_by_hand():
    out, cols = F.conv2d_forward(X3, W2, np.zeros(1))
    dx, dW, db = F.conv2d_backward(np.ones_like(out), cols, W2, X3.shape)
    np.testing.assert_array_equal(dW, [[[[12.0, 16.0], [24.0, 28.0]]]])  # sum of each 2x2 shift
    np.testing.assert_array_equal(db, [4.0])
    # each pixel collects the weights of the windows covering it
    np.testing.assert_array_equal(dx, [[[[1.0, 3.0, 2.0], [4.0, 10.0, 6.0], [3.0, 7.0, 4.0]]]])


CASES = [  # x shape, W shape, stride, padding
    ((2, 3, 7, 7), (4, 3, 3, 3), (1, 1), 0),
    ((2, 3, 7, 6), (4, 3, 3, 3), (2, 2), 1),
    ((1, 2, 8, 9), (3, 2, 3, 2), (2, 3), (2, 1)),
    ((3, 1, 5, 5), (2, 1, 5, 5), (1, 1), 2),
    ((2, 2, 6, 6), (2, 2, 2, 2), (1, 1), ((0, 1), (0, 1))),  # asymmetric, as "same" with k=2
    ((1, 4, 9, 9), (3, 4, 3, 3), (3, 3), 0),  # stride = kernel: windows do not overlap
    ((2, 3, 4, 4), (5, 3, 1, 1), (1, 1), 0),  # 1x1 kernel: a per-pixel dense layer
    # more than COL2IM_MAX_OFFSETS offsets at stride 1: dX by rows (`input_gradient_by_rows`)
    ((2, 3, 9, 9), (4, 3, 5, 5), (1, 1), 0),  # LeNet's second conv, smaller
    ((2, 2, 6, 7), (3, 2, 5, 5), (1, 1), 2),  # padded: the shifted copies' zero borders
    ((1, 2, 5, 6), (2, 2, 4, 4), (1, 1), ((1, 2), (2, 1))),  # even kernel, asymmetric pads
    ((2, 1, 3, 12), (2, 1, 1, 11), (1, 1), 0),  # one row of 11 offsets
    ((1, 2, 7, 5), (3, 2, 5, 3), (1, 1), (1, 0)),  # 5x3
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CASES)
def test_im2col_conv_matches_the_reference_loops(x_shape, w_shape, stride, padding):
    rng = np.random.default_rng(0)
    x, W, b = (
        rng.standard_normal(x_shape),
        rng.standard_normal(w_shape),
        rng.standard_normal(w_shape[0]),
    )
    pads = columns.as_padding(padding)
    out, cols = F.conv2d_forward(x, W, b, stride, padding)
    np.testing.assert_allclose(
        out, reference.conv2d(x, W, b, stride, pads), rtol=1e-12, atol=1e-12, err_msg="ours vs ref"
    )
    g = rng.standard_normal(out.shape)
    dx, dW, db = F.conv2d_backward(g, cols, W, x.shape, stride, padding)
    ref_dx, ref_dW, ref_db = reference.conv2d_backward(g, x, W, stride, pads)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-12, atol=1e-12, err_msg="dx: ours vs ref")
    np.testing.assert_allclose(dW, ref_dW, rtol=1e-12, atol=1e-12, err_msg="dW: ours vs ref")
    np.testing.assert_allclose(db, ref_db, rtol=1e-12, err_msg="db: ours vs ref")


@pytest.mark.parametrize("chunk_bytes", [1, F.CHUNK_BYTES])  # an image per chunk, or all
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CASES)
def test_columns_built_again_give_the_numbers_of_the_kept_ones(
    monkeypatch, chunk_bytes, x_shape, w_shape, stride, padding
):
    """dW from the columns built again from x (`conv2d_weight_gradient_rebuilt`), chunk by
    chunk, is bit for bit dW from the columns conv2d_forward kept, in float32 and float64."""
    monkeypatch.setattr(F, "CHUNK_BYTES", chunk_bytes)
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal(x_shape).astype(dtype)
        W = rng.standard_normal(w_shape).astype(dtype)
        out, cols = F.conv2d_forward(x, W, None, stride, padding)
        g = rng.standard_normal(out.shape).astype(dtype)
        kept = F.conv2d_backward(g, cols, W, x.shape, stride, padding)
        rebuilt = F.conv2d_backward(g, None, W, x.shape, stride, padding, x=x)
        for ours, expected in zip(rebuilt, kept, strict=True):
            assert ours.dtype == expected.dtype == dtype
            np.testing.assert_array_equal(ours, expected)


def test_sum_over_images_adds_the_blocks_sums_in_order():
    values = np.float32([[1e8], [1.0], [-1e8], [1.0]])  # float32: the order decides the bits
    assert F.sum_over_images(values, None)[0] == np.sum(values, axis=0)[0]
    # blocks [1e8, 1] and [-1e8, 1]: 1e8 + (-1e8) = 0; the whole column in order gives 1
    assert F.sum_over_images(values, [2])[0] == np.float32(0.0)
    assert F.sum_over_images(values, [1, 3])[0] == (np.float32(1e8) + 1 + -1e8) + 1
    g = np.arange(24, dtype=np.float64).reshape(4, 2, 3)
    np.testing.assert_array_equal(F.sum_over_images(g, [1], axis=(0, 2)), g.sum(axis=(0, 2)))


def blocks_apart(backward, arrays, cuts):
    """(dx, *sums) of `backward` run on each block of rows of `arrays` apart, joined as the
    one pass's layers joined them before the cuts went inside the functions."""
    starts, ends = [0, *cuts], [*cuts, len(arrays[0])]
    parts = [backward(*(a[s:e] for a in arrays)) for s, e in zip(starts, ends, strict=True)]
    dxs, *sums = zip(*parts, strict=True)
    dx = None if dxs[0] is None else np.concatenate(dxs)
    return dx, *(functools.reduce(np.add, pieces) for pieces in sums)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CASES)
def test_a_backward_cut_in_blocks_gives_the_bits_of_the_blocks_run_apart(
    x_shape, w_shape, stride, padding, dtype
):
    """conv2d_backward with `cuts` (one pass over the batch, the slices' sums) equals each
    block's backward apart, bit for bit: from the kept columns, from the columns built again,
    and by shifted copies."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((7, *x_shape[1:])).astype(dtype)
    W = rng.standard_normal(w_shape).astype(dtype)
    pads = columns.as_padding(padding)
    out, cols = F.conv2d_forward(x, W, None, stride, padding)
    g = rng.standard_normal(out.shape).astype(dtype)
    cuts = [3, 4]  # blocks of 3, 1 and 3 images

    def kept(g, cols):
        return F.conv2d_backward(g, cols, W, (len(g), *x.shape[1:]), stride, padding)

    def rebuilt(g, x):
        return F.conv2d_backward(g, None, W, x.shape, stride, padding, x=x)

    pairs = [
        (F.conv2d_backward(g, cols, W, x.shape, stride, padding, cuts=cuts), (kept, (g, cols))),
        (
            F.conv2d_backward(g, None, W, x.shape, stride, padding, x=x, cuts=cuts),
            (rebuilt, (g, x)),
        ),
    ]
    if stride == (1, 1) and runs_same_size(x_shape, w_shape, pads):
        _, xq = conv_shifted.conv2d_shifted_forward(x, W, None, pads)

        def shifted(g, xq):
            return conv_shifted.conv2d_shifted_backward(g, xq, W, pads)

        whole = conv_shifted.conv2d_shifted_backward(g, xq, W, pads, cuts=cuts)
        pairs.append((whole, (shifted, (g, xq))))
    for ours, (backward, arrays) in pairs:
        for got, expected in zip(ours, blocks_apart(backward, arrays, cuts), strict=True):
            assert got.dtype == expected.dtype == dtype
            np.testing.assert_array_equal(got, expected)


def runs_same_size(x_shape, w_shape, pads):
    """Whether a stride-1 conv with these pads keeps the image's size (the shifted copies'
    case, whatever the channel and pixel minimums)."""
    (kh, kw), ((top, bottom), (left, right)) = w_shape[2:], pads
    return top + bottom == kh - 1 and left + right == kw - 1


def test_the_merged_conv_and_pool_cut_in_blocks_give_the_bits_of_the_blocks_apart():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((7, 1, 8, 8)).astype(np.float32)
    W = rng.standard_normal((9, 1, 3, 3)).astype(np.float32)
    pads = columns.as_padding(1)
    _, (cols, winner) = conv_pool.conv2d_max_pool2d_forward(x, W, None, (1, 1), pads, 2)
    g = rng.standard_normal((7, 9, 4, 4)).astype(np.float32)
    cuts = [3, 4]
    whole = conv_pool.conv2d_max_pool2d_backward(g, cols, winner, W.shape, cuts)

    def apart(g, cols, winner):
        return (None, *conv_pool.conv2d_max_pool2d_backward(g, cols, winner, W.shape))

    _, *expected = blocks_apart(apart, (g, cols, winner), cuts)
    for got, want in zip(whole, expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_im2col_and_col2im_are_adjoint():
    """<im2col(x), c> = <x, col2im(c)>: col2im is exactly the transpose of im2col."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 8))
    kernel, stride, pads = (3, 2), (2, 1), columns.as_padding((1, 2))
    cols = columns.im2col(x, kernel, stride, pads)
    c = rng.standard_normal(cols.shape)
    lhs = np.sum(cols * c)
    rhs = np.sum(x * columns.col2im(c, x.shape, kernel, stride, pads))
    assert lhs == pytest.approx(rhs, rel=1e-12)


@pytest.mark.parametrize(
    "args, in_shape",
    [
        ({"filters": 3, "kernel": 3, "padding": 1}, (2, 6, 6)),
        ({"filters": 2, "kernel": [2, 3], "stride": [2, 1], "padding": [1, 0]}, (3, 5, 6)),
        ({"filters": 2, "kernel": 2, "padding": "same"}, (2, 5, 5)),
        ({"filters": 2, "kernel": 3, "stride": 2, "use_bias": False}, (1, 7, 7)),
        ({"filters": 3, "kernel": 5, "padding": 1}, (2, 6, 6)),  # dX by rows
        ({"filters": 2, "kernel": 3, "padding": 1}, (2, 8, 8)),  # dW from columns built again
        # by shifted copies (npnet.functional.conv_shifted): 4 channels, 8x8
        ({"filters": 3, "kernel": 3, "padding": 1}, (4, 8, 8)),
        ({"filters": 2, "kernel": [2, 5], "padding": "same"}, (4, 8, 9)),
    ],
)
def test_gradient_check(args, in_shape):
    layer = built(in_shape, **args)
    assert layer.shifted == (in_shape[0] >= 4)
    assert layer.rebuilds_columns == (in_shape == (2, 8, 8))
    x = np.random.default_rng(1).standard_normal((2, *in_shape))
    errors = check_layer(layer, x, entries=None)
    assert set(errors) == ({"x", "W", "b"} if args.get("use_bias", True) else {"x", "W"})
    assert max(errors.values()) < TOLERANCE, errors


def test_gradient_check_catches_a_col2im_that_forgets_overlaps(monkeypatch):
    """Negative control: col2im assigning instead of adding (overlapping windows overwrite each
    other) must fail the check on dx, while dW, which does not use col2im, still passes."""

    def overwriting_col2im(dcols, x_shape, kernel, stride, padding):
        n, c, h, w = x_shape
        (kh, kw), (sh, sw), (pad_h, pad_w) = kernel, stride, padding
        oh = columns.conv_output_size(h, kh, sh, pad_h)
        ow = columns.conv_output_size(w, kw, sw, pad_w)
        dcols = dcols.reshape(c, kh, kw, oh, ow, n)
        dxp = np.zeros((c, h + sum(pad_h), w + sum(pad_w), n))
        for p in range(kh):
            for q in range(kw):
                dxp[:, p : p + sh * oh : sh, q : q + sw * ow : sw] = dcols[:, p, q]
        return dxp[:, pad_h[0] : pad_h[0] + h, pad_w[0] : pad_w[0] + w].transpose(3, 0, 1, 2)

    monkeypatch.setattr(F, "col2im_images_last", overwriting_col2im)
    layer = built((2, 5, 5), filters=3, kernel=3, padding=1)
    errors = check_layer(layer, np.random.default_rng(0).standard_normal((2, 2, 5, 5)))
    assert errors["x"] > 0.1
    assert errors["W"] < TOLERANCE


def test_no_input_grad_skips_col2im(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("col2im must not run when input_grad is False")

    monkeypatch.setattr(F, "col2im_images_last", fail)
    layer = built((1, 6, 6), filters=2, kernel=3)
    layer.input_grad = False
    out = layer.forward(np.ones((2, 1, 6, 6)), training=True)
    assert layer.backward(np.ones_like(out)) is None
    assert layer.grads["W"].shape == (2, 1, 3, 3)


@pytest.mark.parametrize(
    "args, in_shape, shifted",
    [
        ({"filters": 32, "kernel": 3, "padding": 1}, (16, 14, 14), True),  # cnn.yaml's second
        ({"filters": 8, "kernel": 5, "padding": "same"}, (4, 8, 8), True),
        ({"filters": 8, "kernel": 4, "padding": "same"}, (4, 8, 8), True),  # (1, 2) rows
        ({"filters": 16, "kernel": 3, "padding": 1}, (1, 28, 28), False),  # one channel
        ({"filters": 16, "kernel": 3, "padding": 1}, (3, 32, 32), False),  # three
        ({"filters": 128, "kernel": 3, "padding": 1}, (64, 7, 7), False),  # 49 pixels
        ({"filters": 8, "kernel": 3, "padding": 1, "stride": 2}, (8, 14, 14), False),
        ({"filters": 8, "kernel": 3}, (8, 14, 14), False),  # 12x12 out: not the input's size
        ({"filters": 8, "kernel": 3, "padding": 2}, (8, 14, 14), False),  # 16x16 out
    ],
)
def test_which_convolutions_run_by_shifted_copies(args, in_shape, shifted):
    """Stride 1, the output the input's size, >= 4 channels and >= 64 pixels
    (conv_shifted.runs_shifted): those run by shifted copies, the rest by im2col."""
    layer = built(in_shape, **args)
    assert layer.shifted is shifted
    x = np.random.default_rng(0).standard_normal((2, *in_shape))
    out = layer.forward(x, training=True)
    assert out.shape == (2, *layer.out_shape)
    assert (layer.saved.shape[1:3] == (in_shape[0], layer.kernel_hw[1])) is shifted  # Xq
    np.testing.assert_allclose(
        out, layer.forward(x, training=False), rtol=1e-12, atol=1e-12, err_msg="eval pass"
    )


@pytest.mark.parametrize(
    "args, in_shape, rebuilds",
    [
        ({"filters": 6, "kernel": 5, "padding": 2}, (1, 28, 28), True),  # LeNet-5's first
        ({"filters": 16, "kernel": 5}, (6, 14, 14), True),  # LeNet-5's second: 10x10 out
        ({"filters": 8, "kernel": 3, "padding": 1}, (2, 8, 8), True),  # 64 pixels out
        ({"filters": 8, "kernel": 3}, (2, 9, 9), False),  # 49 pixels out
        ({"filters": 8, "kernel": 3, "padding": 1}, (64, 7, 7), False),  # 49 pixels
        ({"filters": 4, "kernel": 3, "stride": 2}, (1, 19, 19), False),  # stride 2
        ({"filters": 8, "kernel": 3, "padding": 1}, (4, 8, 8), False),  # by shifted copies
    ],
)
def test_convs_that_keep_their_input_and_build_the_columns_again(args, in_shape, rebuilds):
    """At stride 1 with REBUILD_MIN_PIXELS output pixels or more a training pass keeps x, not
    its im2col columns, and the backward pass gives the numbers of a twin that keeps the
    columns, bit for bit."""
    layer, twin = built(in_shape, np.float32, **args), built(in_shape, np.float32, **args)
    assert layer.rebuilds_columns is rebuilds
    twin.rebuilds_columns = False
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, *in_shape)).astype(np.float32)
    out, twin_out = layer.forward(x, training=True), twin.forward(x, training=True)
    assert (layer.saved is x) is rebuilds
    np.testing.assert_array_equal(out, twin_out)
    g = rng.standard_normal(out.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(g), twin.backward(g))
    for key, grad in layer.grads.items():
        np.testing.assert_array_equal(grad, twin.grads[key])
    layer.forward(x, training=False)
    assert layer.saved is None  # no backward pass follows an evaluation


def test_float32_stays_float32():
    layer = built((3, 8, 8), dtype=np.float32, filters=4, kernel=3, padding=1)
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    out = layer.forward(x, training=True)
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == np.float32
    assert layer.params["W"].dtype == layer.params["b"].dtype == np.float32
    assert layer.grads["W"].dtype == layer.grads["b"].dtype == np.float32
    assert out.flags.c_contiguous


def test_float32_stays_float32_by_shifted_copies():
    layer = built((4, 8, 8), dtype=np.float32, filters=4, kernel=3, padding=1)
    assert layer.shifted
    x = np.random.default_rng(0).standard_normal((2, 4, 8, 8)).astype(np.float32)
    out = layer.forward(x, training=True)
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == layer.saved.dtype == np.float32
    assert layer.grads["W"].dtype == layer.grads["b"].dtype == np.float32
    assert out.flags.c_contiguous and layer.grads["W"].flags.c_contiguous


@pytest.mark.parametrize(
    "args, in_shape, out_shape",
    [
        ({"filters": 16, "kernel": 3, "padding": 1}, (1, 28, 28), (16, 28, 28)),
        ({"filters": 8, "kernel": 5}, (3, 28, 28), (8, 24, 24)),
        ({"filters": 4, "kernel": 3, "stride": 2}, (1, 28, 28), (4, 13, 13)),
        ({"filters": 4, "kernel": [3, 5], "padding": "same"}, (2, 9, 10), (4, 9, 10)),
        ({"filters": 4, "kernel": 4, "padding": "same"}, (2, 9, 10), (4, 9, 10)),
        ({"filters": 4, "kernel": 3, "padding": "valid"}, (2, 9, 10), (4, 7, 8)),
    ],
)
def test_output_shape(args, in_shape, out_shape):
    layer = built(in_shape, **args)
    assert layer.out_shape == out_shape
    out = layer.forward(np.zeros((2, *in_shape)), training=False)
    assert out.shape == (2, *out_shape)


def test_same_padding_puts_the_extra_row_after_like_pytorch():
    assert conv.Conv2D(1, 4, padding="same").pads == ((1, 2), (1, 2))
    assert conv.Conv2D(1, [3, 2], padding="same").pads == ((1, 1), (0, 1))


def test_weights_use_pytorch_conv_fans():
    layer = built((32, 8, 8), filters=64, kernel=5)  # 51,200 weights
    assert layer.params["W"].shape == (64, 32, 5, 5)
    assert layer.params["W"].std() == pytest.approx(math.sqrt(2 / (32 * 25)), rel=0.02)
    glorot = built((32, 8, 8), filters=64, kernel=5, init="xavier_normal")
    expected = math.sqrt(2 / (32 * 25 + 64 * 25))
    assert glorot.params["W"].std() == pytest.approx(expected, rel=0.02)
    assert not layer.params["b"].any()


@pytest.mark.parametrize(
    "args",
    [
        {"filters": 16, "kernel": 3, "padding": 1},
        {"filters": 4, "kernel": [3, 5], "stride": [1, 2], "padding": [0, 1], "use_bias": False},
        {"filters": 4, "kernel": 4, "padding": "same", "init": "lecun_uniform"},
    ],
)
def test_config_round_trip(args):
    layer = LAYERS.build("conv2d", args)
    config = layer.get_config()
    assert {k: config[k] for k in args} == args
    rebuilt = type(layer)(**config)
    assert rebuilt.get_config() == config
    assert rebuilt.pads == layer.pads


@pytest.mark.parametrize(
    "args, message",
    [
        ({"filters": 0, "kernel": 3}, "'filters' must be a positive int, got 0"),
        ({"filters": 2, "kernel": 0}, "'kernel' must be a positive int, got 0"),
        ({"filters": 2, "kernel": [3, 0]}, "'kernel' must be a positive int, got 0"),
        ({"filters": 2, "kernel": [3]}, r"'kernel' must be an int or a pair \[height, width\]"),
        ({"filters": 2, "kernel": 3, "stride": -1}, "'stride' must be a positive int, got -1"),
        ({"filters": 2, "kernel": 3, "padding": -1}, "'padding' must be an int >= 0, got -1"),
        ({"filters": 2, "kernel": 3, "padding": "sme"}, "did you mean 'same'"),
        ({"filters": 2, "kernel": 3, "stride": 2, "padding": "same"}, "'same' needs stride 1"),
        ({"filters": 2, "kernel": 3, "use_bias": 1}, "'use_bias' must be true or false"),
        ({"filters": 2, "kernel": 3, "init": "kaiming"}, "'init' must be one of"),
    ],
)
def test_rejects_bad_arguments(args, message):
    with pytest.raises(ConfigError, match=message):
        LAYERS.build("conv2d", args)


def test_flat_input_is_a_build_error():
    with pytest.raises(ConfigError, match=r"conv2d expects an image input .* got \(784,\)"):
        built((784,), filters=2, kernel=3)


def test_kernel_larger_than_padded_input_is_a_build_error():
    with pytest.raises(ConfigError, match="kernel 5x5 is larger than the padded input 3x3"):
        built((1, 3, 3), filters=2, kernel=5)
    assert built((1, 3, 3), filters=2, kernel=5, padding=1).out_shape == (2, 1, 1)
