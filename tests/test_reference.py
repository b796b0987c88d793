"""The fast paths against their plain-loop definitions in npnet.functional.reference, on
random shapes: im2col/col2im and the convolution, max pooling (ties everywhere, the first
maximum wins) and average pooling, Adam and AdamW. Mismatch messages say ours vs reference."""

from __future__ import annotations

import numpy as np
import pytest

from npnet.functional import conv, conv_columns, conv_shifted, pooling
from npnet.functional import reference as ref
from npnet.optim.optimizers import Adam, AdamW


def conv_cases(count: int, seed: int = 0):
    """Random (x shape, W shape, stride, padding) whose windows fit the padded input."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        kh, kw, sh, sw = rng.integers(1, 4, size=4)
        padding = tuple(tuple(int(p) for p in rng.integers(0, 3, size=2)) for _ in range(2))
        h, w = rng.integers(kh, 8), rng.integers(kw, 8)
        n, c, f = rng.integers(1, 4, size=3)
        x_shape, w_shape = (n, c, h, w), (f, c, kh, kw)
        cases.append((x_shape, w_shape, (int(sh), int(sw)), padding))
    return cases


CONV_CASES = conv_cases(12)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CASES)
def test_conv2d_matches_the_reference(x_shape, w_shape, stride, padding):
    rng = np.random.default_rng(1)
    x, W, b = (rng.standard_normal(s) for s in (x_shape, w_shape, w_shape[0]))
    out, cols = conv.conv2d_forward(x, W, b, stride, padding)
    np.testing.assert_allclose(
        out, ref.conv2d(x, W, b, stride, padding), rtol=1e-12, atol=1e-12, err_msg="ours vs ref"
    )
    g = rng.standard_normal(out.shape)
    ours = conv.conv2d_backward(g, cols, W, x.shape, stride, padding)
    expected = ref.conv2d_backward(g, x, W, stride, padding)
    for name, a, r in zip(["dx", "dW", "db"], ours, expected, strict=True):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12, err_msg=f"{name}: ours vs ref")


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CASES)
def test_the_input_gradient_by_rows_matches_the_reference(
    x_shape, w_shape, stride, padding, monkeypatch
):
    """Every stride-1 case through `input_gradient_by_rows` (the threshold lowered to 0), and
    every other stride still through col2im."""
    monkeypatch.setattr(conv, "COL2IM_MAX_OFFSETS", 0)
    rng = np.random.default_rng(2)
    x, W = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    out, cols = conv.conv2d_forward(x, W, None, stride, padding)
    g = rng.standard_normal(out.shape)
    dx = conv.conv2d_backward(g, cols, W, x.shape, stride, padding)[0]
    expected = ref.conv2d_backward(g, x, W, stride, padding)[0]
    np.testing.assert_allclose(dx, expected, rtol=1e-12, atol=1e-12)
    if stride == (1, 1):
        assert np.array_equal(dx, conv.input_gradient_by_rows(g, W, x.shape, padding))


@pytest.mark.parametrize("fold_max_rows", [0, 32, 1000], ids=["bias-pass", "default", "fold"])
@pytest.mark.parametrize("channels", [1, 4])  # 9 and 36 rows per column
def test_conv2d_with_the_bias_in_the_product_or_after_it(channels, fold_max_rows, monkeypatch):
    """The bias as a last row of ones in the columns (few rows) or as a pass over the output
    (more rows): both the reference's numbers, and the columns kept are the im2col columns."""
    monkeypatch.setattr(conv, "FOLD_BIAS_MAX_ROWS", fold_max_rows)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, channels, 6, 5))
    W, b = rng.standard_normal((2, channels, 3, 3)), rng.standard_normal(2)
    padding = ((1, 1), (1, 1))
    out, cols = conv.conv2d_forward(x, W, b, 1, padding)
    np.testing.assert_allclose(out, ref.conv2d(x, W, b, (1, 1), padding), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(cols, ref.im2col(x, (3, 3), (1, 1), padding))
    np.testing.assert_allclose(
        conv.conv2d(x, W, b, 1, padding), out, rtol=1e-12, atol=1e-12, err_msg="eval pass"
    )


def same_size_cases(count: int, seed: int = 0):
    """Random stride-1 (x shape, W shape, padding) whose output is the input's size: kernels
    1-5 on each axis (even ones pad one more row or column on either side), any channels."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        kh, kw = (int(k) for k in rng.integers(1, 6, size=2))
        top, left = int(rng.integers(0, kh)), int(rng.integers(0, kw))
        padding = ((top, kh - 1 - top), (left, kw - 1 - left))
        h, w = (int(v) for v in rng.integers(1, 9, size=2))
        n, c, f = (int(v) for v in rng.integers(1, 4, size=3))
        cases.append(((n, c, h, w), (f, c, kh, kw), padding))
    return cases


class Unwritten:
    """numpy with `empty` filled with NaN: an element a pass forgets to write shows."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def empty(shape, dtype=float):
        return np.full(shape, np.nan, dtype=dtype)


@pytest.mark.parametrize("x_shape, w_shape, padding", same_size_cases(16))
def test_the_conv_by_shifted_copies_matches_the_reference(x_shape, w_shape, padding, monkeypatch):
    """conv_shifted's forward, dW, db and dX against the plain loops on any same-size shape
    (the MIN_CHANNELS and MIN_PIXELS limits bypassed), every buffer starting as NaN."""
    monkeypatch.setattr(conv_shifted, "np", Unwritten())
    rng = np.random.default_rng(3)
    x, W, b = (rng.standard_normal(s) for s in (x_shape, w_shape, w_shape[0]))
    out, xq = conv_shifted.conv2d_shifted_forward(x, W, b, padding)
    expected = ref.conv2d(x, W, b, (1, 1), padding)
    assert out.shape == expected.shape == (x_shape[0], w_shape[0], *x_shape[2:])
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12, err_msg="forward")
    monkeypatch.setattr(conv, "CHUNK_BYTES", 1)  # an evaluation pass: an image at a time
    evaluated, none = conv_shifted.conv2d_shifted_forward(x, W, b, padding, keep=False)
    assert none is None
    np.testing.assert_array_equal(evaluated, out)
    g = rng.standard_normal(out.shape)
    ours = conv_shifted.conv2d_shifted_backward(g, xq, W, padding)
    expected = ref.conv2d_backward(g, x, W, (1, 1), padding)
    for name, a, r in zip(["dx", "dW", "db"], ours, expected, strict=True):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12, err_msg=f"{name}: ours vs ref")
    dx, dW, db = conv_shifted.conv2d_shifted_backward(g, xq, W, padding, input_grad=False)
    assert dx is None
    np.testing.assert_array_equal(dW, ours[1])
    np.testing.assert_array_equal(db, ours[2])
    monkeypatch.setattr(conv_shifted, "BACKWARD_CHUNK_BYTES", 1)  # an image at a time
    for a, whole in zip(conv_shifted.conv2d_shifted_backward(g, xq, W, padding), ours, strict=True):
        np.testing.assert_array_equal(a, whole)


@pytest.mark.parametrize("chunk_bytes", [1, 3 * 16 * 3 * 36 * 4, 2**19])  # 1, 3, all images
def test_the_backward_by_shifted_copies_gives_the_same_bits_in_any_chunks(chunk_bytes, monkeypatch):
    """float32, 7 images of 16 -> 16 channels on 6x6, 3x3: a chunk of one image, of three
    (the last chunk one image) or all at once, the same dX, dW and db to the last bit."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((7, 16, 6, 6)).astype(np.float32)
    W = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    padding = ((1, 1), (1, 1))
    out, xq = conv_shifted.conv2d_shifted_forward(x, W, None, padding)
    g = rng.standard_normal(out.shape).astype(np.float32)
    whole = conv_shifted.conv2d_shifted_backward(g, xq, W, padding)
    monkeypatch.setattr(conv_shifted, "BACKWARD_CHUNK_BYTES", chunk_bytes)
    for a, b in zip(conv_shifted.conv2d_shifted_backward(g, xq, W, padding), whole, strict=True):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CASES)
def test_im2col_and_col2im_match_the_reference(x_shape, w_shape, stride, padding):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape)
    kernel = w_shape[2:]
    cols = conv_columns.im2col(x, kernel, stride, padding)
    np.testing.assert_array_equal(cols, ref.im2col(x, kernel, stride, padding), "ours vs ref")
    dcols = rng.standard_normal(cols.shape)
    np.testing.assert_allclose(
        conv_columns.col2im(dcols, x.shape, kernel, stride, padding),
        ref.col2im(dcols, x.shape, kernel, stride, padding),
        rtol=1e-12,
        atol=1e-12,
        err_msg="ours vs ref",
    )


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CASES)
def test_col2im_with_the_images_last_matches_the_reference(x_shape, w_shape, stride, padding):
    """The layout conv2d_backward uses, (C·kh·kw, OH, OW, N), against the plain loops and,
    bit for bit, against `col2im` (the same adds in the same order)."""
    rng = np.random.default_rng(7)
    kernel = w_shape[2:]
    cols_shape = conv_columns.im2col(np.zeros(x_shape), kernel, stride, padding).shape
    n, rows, (oh, ow) = x_shape[0], cols_shape[1], ref_output_hw(x_shape, kernel, stride, padding)
    dcols = rng.standard_normal((rows, oh, ow, n))
    as_per_image = dcols.transpose(3, 0, 1, 2).reshape(n, rows, oh * ow)
    dx = conv_columns.col2im_images_last(dcols, x_shape, kernel, stride, padding)
    assert dx.flags.c_contiguous
    np.testing.assert_allclose(
        dx,
        ref.col2im(as_per_image, x_shape, kernel, stride, padding),
        rtol=1e-12,
        atol=1e-12,
        err_msg="ours vs ref",
    )
    np.testing.assert_array_equal(
        dx, conv_columns.col2im(as_per_image, x_shape, kernel, stride, padding)
    )


def ref_output_hw(x_shape, kernel, stride, padding):
    """(OH, OW) of a convolution, from the reference's own rule."""
    (top, bottom), (left, right) = padding
    return (
        ref.output_size(x_shape[2] + top + bottom, kernel[0], stride[0]),
        ref.output_size(x_shape[3] + left + right, kernel[1], stride[1]),
    )


# (x shape, size, stride): exact tilings, overlapping windows, windows that leave a border
POOL_CASES = [
    ((2, 3, 4, 4), 2, 2),
    ((1, 2, 6, 6), 3, 3),
    ((2, 1, 7, 7), 3, 2),
    ((1, 2, 5, 8), 2, 1),
    ((3, 2, 9, 7), 2, 2),
    ((1, 1, 5, 5), 4, 1),
    ((2, 2, 3, 3), 1, 1),
]


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, size, stride", POOL_CASES)
def test_max_pool_matches_the_reference(shape, size, stride, dtype, ties):
    """With ties (values drawn from {0, 1, 2}, as MNIST's flat background makes them) the
    gradient must go to the first maximum of each window in row-major order."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, size=shape) if ties else rng.standard_normal(shape)
    x = x.astype(dtype)
    out, argmax = pooling.max_pool2d_forward(x, size, stride)
    ref_out, ref_argmax = ref.max_pool2d(x, size, stride)
    np.testing.assert_array_equal(out, ref_out, "out: ours vs ref")
    np.testing.assert_array_equal(argmax, ref_argmax, "argmax: ours vs ref")
    np.testing.assert_array_equal(pooling.max_pool2d(x, size, stride), ref_out, "eval: ours")
    g = rng.standard_normal(out.shape).astype(dtype)
    dx = pooling.max_pool2d_backward(g, argmax, x.shape, size, stride)
    np.testing.assert_allclose(
        dx, ref.max_pool2d_backward(g, x, size, stride), rtol=1e-6, err_msg="dx: ours vs ref"
    )


TILED_CASES = [(2, 3, 4, 4), (1, 2, 6, 6), (3, 1, 6, 9), (2, 2, 8, 4)]  # H, W multiples of k


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", TILED_CASES)
def test_tiled_max_pool_matches_the_reference(shape, dtype, ties):
    """The two-stage offsets of windows that tile the image, against their plain loops and
    against the argmax form: the same maxima, the same first maximum, the same dx."""
    rng = np.random.default_rng(6)
    x = rng.integers(0, 3, size=shape) if ties else rng.standard_normal(shape)
    x = x.astype(dtype)
    size = 2 if shape[3] % 3 else 3
    out, rows, columns = pooling.max_pool2d_tiled_forward(x, size)
    ref_out, ref_rows, ref_columns = ref.max_pool2d_tiled(x, size)
    np.testing.assert_array_equal(out, ref_out, "out: ours vs ref")
    np.testing.assert_array_equal(rows, ref_rows, "rows: ours vs ref")
    np.testing.assert_array_equal(columns, ref_columns, "columns: ours vs ref")
    _, argmax = ref.max_pool2d(x, size, size)
    winning_row = np.arange(out.shape[2])[:, None] * size + rows  # h = i·k + p
    q = np.take_along_axis(columns, winning_row.astype(np.intp), axis=2)
    np.testing.assert_array_equal(rows.astype(int) * size + q, argmax, "p·k + q vs argmax")
    g = rng.standard_normal(out.shape).astype(dtype)
    dx = pooling.max_pool2d_tiled_backward(g, rows, columns, size)
    np.testing.assert_array_equal(dx, ref.max_pool2d_tiled_backward(g, rows, columns, size))
    np.testing.assert_array_equal(dx, ref.max_pool2d_backward(g, x, size, size), "dx vs argmax")


def test_the_reference_max_pool_takes_the_first_maximum():
    """By hand: in [[1, 2], [2, 2]] the first 2 (offset 1) takes the gradient, not a later
    one; so a fast path keeping the last maximum would fail the comparison above."""
    x = np.array([[[[1.0, 2.0], [2.0, 2.0]]]])
    out, argmax = ref.max_pool2d(x, 2, 2)
    assert out[0, 0, 0, 0] == 2.0 and argmax[0, 0, 0, 0] == 1
    dx = ref.max_pool2d_backward(np.array([[[[5.0]]]]), x, 2, 2)
    np.testing.assert_array_equal(dx, [[[[0.0, 5.0], [0.0, 0.0]]]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, size, stride", POOL_CASES)
def test_avg_pool_matches_the_reference(shape, size, stride, dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape).astype(dtype)
    out = pooling.avg_pool2d(x, size, stride)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out, ref.avg_pool2d(x, size, stride), rtol=rtol, atol=rtol)
    g = rng.standard_normal(out.shape).astype(dtype)
    np.testing.assert_allclose(
        pooling.avg_pool2d_backward(g, x.shape, size, stride),
        ref.avg_pool2d_backward(g, x.shape, size, stride),
        rtol=rtol,
        atol=rtol,
        err_msg="dx: ours vs ref",
    )


@pytest.mark.parametrize(
    "cls, args",
    [
        (Adam, {"lr": 0.01}),
        (Adam, {"lr": 0.003, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
        (AdamW, {"lr": 0.01}),
        (AdamW, {"lr": 0.002, "betas": (0.5, 0.9), "weight_decay": 0.3}),
    ],
)
def test_adam_matches_the_textbook_step(cls, args):
    """Five in-place steps of npnet's Adam against the reference step, in float64."""
    rng = np.random.default_rng(5)
    optimizer = cls(**args)
    param = rng.standard_normal((4, 3))
    expected, m, v = param.copy(), np.zeros_like(param), np.zeros_like(param)
    settings = {k: optimizer.get_config()[k] for k in ("lr", "betas", "eps", "weight_decay")}
    for t in range(1, 6):
        grad = rng.standard_normal(param.shape)
        optimizer.step({"w": param}, {"w": grad})
        expected, m, v = ref.adam_step(expected, grad, m, v, t, **settings, decoupled=cls.decoupled)
        np.testing.assert_allclose(param, expected, rtol=1e-12, atol=1e-14, err_msg="ours vs ref")
    np.testing.assert_allclose(optimizer.state["w"]["m"], m, rtol=1e-12)
    np.testing.assert_allclose(optimizer.state["w"]["v"], v, rtol=1e-12)
