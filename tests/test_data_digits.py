"""MNIST-style preprocessing of outside images (npnet.data.digits) on constructed cases."""

import numpy as np
import pytest
from PIL import Image

from npnet.data.digits import prepare_digit, read_image
from npnet.data.mnist import load_mnist
from npnet.errors import DataError


def seven(height: int) -> np.ndarray:
    """A "7", `height` px tall and 0.7·height wide, light (1) on black (0), float32: a top bar
    and a slanted stroke, so its centre of mass is not its box's centre. Drawn from the same
    geometry at every size (pixel centres), so sizes differ only by sampling."""
    width = round(0.7 * height)
    v, u = (np.mgrid[:height, :width] + 0.5) / [[[height]], [[width]]]
    bar = (v < 0.15) & (u > 0.05) & (u < 0.95)
    # distance from the line (0.9, 0.1) -> (0.35, 0.98) in (u, v) units scaled to the height
    a, b = np.array([0.9 * 0.7, 0.1]), np.array([0.35 * 0.7, 0.98])
    p = np.stack([u * 0.7, v], axis=-1)
    t = np.clip(((p - a) @ (b - a)) / ((b - a) @ (b - a)), 0, 1)
    stroke = np.linalg.norm(p - (a + t[..., None] * (b - a)), axis=-1) < 0.07
    return (bar | stroke).astype(np.float32)


def on_canvas(digit: np.ndarray, shape: tuple[int, int], at: tuple[int, int]) -> np.ndarray:
    canvas = np.zeros(shape, dtype=np.float32)
    canvas[at[0] : at[0] + digit.shape[0], at[1] : at[1] + digit.shape[1]] = digit
    return canvas


def centre_of_mass(image: np.ndarray) -> np.ndarray:
    rows, cols = np.mgrid[: image.shape[0], : image.shape[1]]
    return np.array([(image * rows).sum(), (image * cols).sum()]) / image.sum()


def test_the_result_is_mnist_shaped_a_20_pixel_box_in_28x28():
    digit = seven(200)
    out = prepare_digit(on_canvas(digit, (300, 300), (40, 60)))
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert out.min() == 0 and out.max() == 1
    height, width = (np.count_nonzero(digit.any(axis=a)) for a in (1, 0))
    rows, cols = np.flatnonzero(out.any(axis=1)), np.flatnonzero(out.any(axis=0))
    assert rows[-1] - rows[0] + 1 == 20  # the longer side
    assert cols[-1] - cols[0] + 1 == round(20 * width / height)  # the aspect ratio is kept


def test_a_shifted_digit_comes_back_the_same_and_centred_by_its_mass():
    digit = seven(120)
    results = [
        prepare_digit(on_canvas(digit, (400, 300), at)) for at in [(0, 0), (150, 30), (280, 215)]
    ]
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])
    # Placed by whole pixels: the centre of mass is within half a pixel of MNIST's (14, 14).
    assert np.all(np.abs(centre_of_mass(results[0]) - 14.0) <= 0.5)


def test_an_inverted_image_comes_back_the_same_as_the_original():
    light_on_dark = on_canvas(seven(90), (160, 140), (30, 20))
    np.testing.assert_allclose(
        prepare_digit(1 - light_on_dark), prepare_digit(light_on_dark), atol=1e-6
    )


def test_grey_paper_and_dim_ink_give_the_same_result_as_black_and_white():
    digit = on_canvas(seven(90), (160, 140), (30, 20))
    photo = 0.8 - 0.55 * digit  # ink at 0.25 on paper at 0.8, as a photo of a page is
    np.testing.assert_allclose(prepare_digit(photo), prepare_digit(digit), atol=1e-5)


def test_a_tiny_and_a_huge_image_give_the_same_28x28_up_to_resampling():
    huge = prepare_digit(on_canvas(seven(800), (1200, 900), (100, 250)))
    small = prepare_digit(on_canvas(seven(60), (80, 70), (10, 5)))
    tiny = prepare_digit(on_canvas(seven(14), (30, 30), (10, 5)))  # scaled up, not down
    assert np.abs(small - huge).mean() < 0.01
    assert np.abs(tiny - huge).mean() < 0.05  # coarse sampling of a 14-pixel drawing
    assert np.all(np.abs(centre_of_mass(tiny) - centre_of_mass(huge)) <= 1.0)
    # The bounds mean something: the mirrored digit is much further away.
    assert np.abs(huge[:, ::-1] - huge).mean() > 0.1


def test_colour_alpha_and_integer_images_are_read_as_their_grey_levels():
    digit = on_canvas(seven(90), (160, 140), (30, 20))
    expected = prepare_digit(digit)
    # red ink on white paper, as uint8 RGB
    rgb = np.full((*digit.shape, 3), 255, dtype=np.uint8)
    rgb[digit > 0] = [200, 0, 0]
    np.testing.assert_allclose(prepare_digit(rgb), expected, atol=1e-5)
    # black strokes on a transparent canvas (RGBA), and white ones: both are the same digit
    for colour in (0, 255):
        rgba = np.zeros((*digit.shape, 4), dtype=np.uint8)
        rgba[..., :3] = colour
        rgba[..., 3] = (digit * 255).astype(np.uint8)
        np.testing.assert_allclose(prepare_digit(rgba), expected, atol=1e-5)
    np.testing.assert_allclose(prepare_digit((digit * 65535).astype(np.uint16)), expected)
    np.testing.assert_allclose(prepare_digit(digit > 0), expected)
    np.testing.assert_allclose(prepare_digit(digit * 255), expected, atol=1e-6)


def test_the_input_is_not_modified():
    image = np.ascontiguousarray(255 - on_canvas(seven(50), (80, 80), (9, 9)) * 255).astype(
        np.uint8
    )
    before = image.copy()
    prepare_digit(image)
    np.testing.assert_array_equal(image, before)


def test_real_mnist_digits_come_back_almost_unchanged():
    """MNIST's own test images are already in the format: the preprocessing keeps them."""
    _, _, x_test, _ = load_mnist(None)
    images = x_test[:300].reshape(-1, 28, 28)
    prepared = np.stack([prepare_digit(image) for image in images])
    assert np.abs(prepared - images / 255.0).mean() < 0.01


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((40, 40), np.uint8),
        np.full((40, 40), 255, np.uint8),
        np.full((40, 40), 0.6, np.float32),
        np.random.default_rng(0).integers(250, 256, (40, 40)).astype(np.uint8),  # white + noise
        np.zeros((40, 40, 4), np.uint8),  # fully transparent
    ],
    ids=["black", "white", "grey", "noisy-white", "transparent"],
)
def test_an_image_without_ink_is_a_data_error(image):
    with pytest.raises(DataError, match="no ink"):
        prepare_digit(image)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((4, 4, 5)), "must be"),
        (np.zeros((4,)), "must be"),
        (np.zeros((0, 4)), "empty"),
        (np.array([[1.0, np.nan]]), "NaN"),
        (np.array([[-3, 40]], dtype=np.int16), "0..255"),
        (np.array([["a"]]), "numbers"),
    ],
)
def test_malformed_arrays_are_data_errors(image, message):
    with pytest.raises(DataError, match=message):
        prepare_digit(image)


# ---- read_image -----------------------------------------------------------------------------


def test_read_image_reads_the_common_formats(tmp_path):
    grey = (255 - on_canvas(seven(60), (90, 80), (10, 10)) * 255).astype(np.uint8)
    expected = prepare_digit(grey)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    cases = {
        "grey.png": Image.fromarray(grey),
        "colour.jpg": Image.fromarray(rgb),
        "grey.bmp": Image.fromarray(grey),
        "palette.gif": Image.fromarray(rgb).convert("P"),
        "deep.tif": Image.fromarray(grey.astype(np.uint16) * 257),
        "alpha.png": Image.fromarray(np.dstack([rgb, np.full_like(grey, 255)])),
    }
    for name, image in cases.items():
        image.save(tmp_path / name)
        pixels = read_image(tmp_path / name)
        assert pixels.shape[:2] == grey.shape, name
        # JPEG is lossy; the others give back the same digit.
        np.testing.assert_allclose(prepare_digit(pixels), expected, atol=0.1, err_msg=name)
    assert read_image(tmp_path / "deep.tif").dtype == np.uint16
    assert read_image(tmp_path / "alpha.png").shape == (*grey.shape, 4)


def test_read_image_turns_exif_orientation_upright(tmp_path):
    pixels = np.zeros((30, 50), np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    Image.fromarray(pixels).save(tmp_path / "phone.jpg", exif=exif)
    assert read_image(tmp_path / "phone.jpg").shape == (50, 30)


def test_read_image_names_the_file_that_cannot_be_read(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "whole.jpg")
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    cases = {
        "notes.png": "not an image",
        "cut.jpg": "damaged",
        "missing.png": "no such file",
        ".": "is a directory",
    }
    for name, message in cases.items():
        with pytest.raises(DataError, match=message) as error:
            read_image(tmp_path / name)
        assert str(tmp_path / name) in str(error.value)
