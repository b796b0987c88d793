"""Digit images from the outside world in MNIST's own format: `read_image` and `prepare_digit`.

MNIST's digits are light on dark; each was scaled so the longer side of its ink's box is
20 px (aspect ratio kept, anti-aliased into grey levels) and placed in a 28×28 field so that
the centre of mass of its ink lies at the field's centre (LeCun et al., the MNIST page). A
photo of a digit is none of that: dark ink on light paper, large, anywhere in the frame.
`prepare_digit` turns one into the other, step by step:

    grey      L = 0.299 R + 0.587 G + 0.114 B (ITU-R 601-2, as Pillow); transparent pixels
              are composited over the colour that contrasts with the opaque ones
    values    to [0, 1]: integers are 8-bit (uint16 16-bit), floats [0, 1] (or [0, 255])
    invert    x ← 1 − x when the border (the outermost pixels) is mostly light: paper
    paper     b = the border's median, m = the brightest ink: x ← clip((x − b)/(m − b), 0, 1),
              and levels under 10 % of the ink are paper noise (0)
    crop      to the box of the ink, the pixels at least half as bright as the brightest
    scale     the box's longer side to 20 px, aspect kept, bilinear (anti-aliased when
              shrinking, as Pillow widens the filter by the scale), brightest pixel back to 1
    place     in 28×28, shifted by whole pixels so the centre of mass lands on (14, 14) (row,
              column, from the top left pixel's centre: where MNIST's training digits have it
              on average)

Pillow reads and resamples the images (it is a core dependency for that); everything else is
array arithmetic over whole images.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from npnet.errors import DataError

SIZE = 28  # the field
BOX = 20  # the longer side of the ink's box inside it
CENTRE = 14.0  # MNIST's mean centre of mass, row and column (14.00, 14.01 on the training set)
INK = 0.5  # share of the brightest level from which a pixel counts as ink, for the crop
NOISE = 0.1  # share of the brightest level under which a pixel is paper
MIN_CONTRAST = 0.1  # ink this close to the paper's level (of the [0, 1] range) is no ink
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """The pixels of image file `path` as Pillow decodes them, upright (EXIF orientation
    applied), first frame of an animation.

    Returns uint8 (H, W) for grey images, (H, W, 3) for colour ones, (H, W, 4) RGBA when the
    image has transparency; uint16 (H, W) for 16-bit grey. A missing, unreadable, damaged or
    non-image file is a DataError naming it.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated or damaged file fails here, not later
            image = ImageOps.exif_transpose(image)
            return _pixels(image)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not an image file") from None
    except UnidentifiedImageError:
        raise DataError(
            f"{path}: not an image Pillow can read (PNG, JPEG, BMP, GIF, TIFF, ...)"
        ) from None
    except Image.DecompressionBombError as error:
        raise DataError(f"{path}: too large to read ({error})") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise DataError(f"{path}: damaged or unreadable image ({error})") from None


def _pixels(image: Image.Image) -> np.ndarray:
    """An opened image as an array in one of the layouts `read_image` documents."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I"):
        # 16-bit grey (PNG, TIFF): Pillow holds it as 32-bit integers in mode "I".
        return np.clip(np.asarray(image, dtype=np.int64), 0, 65535).astype(np.uint16)
    if image.mode == "F":
        return np.asarray(image, dtype=np.float32)
    transparent = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if transparent:
        return np.asarray(image.convert("RGBA"))
    if image.mode in ("1", "L"):
        return np.asarray(image.convert("L"))
    return np.asarray(image.convert("RGB"))


def prepare_digit(image: np.ndarray) -> np.ndarray:
    """A digit image of any size in MNIST's format: light digit on dark, 20 px box, 28×28,
    centred by centre of mass (the steps are in the module docstring).

    image: (H, W) grey, (H, W, 2) grey with alpha, (H, W, 3) RGB or (H, W, 4) RGBA; uint8,
        uint16, bool or float; dark on light or light on dark. Not modified.
    Returns (28, 28) float32 in [0, 1]. An image with no ink (every pixel about as bright as
    the paper) is a DataError.
    """
    x = _invert_paper(_grey(image))
    top, bottom, left, right = _ink_box(x >= INK)
    box = _resize(x[top:bottom, left:right])
    return _place(box)


def _grey(image: np.ndarray) -> np.ndarray:
    """(H, W) float32 luminance in [0, 1] (see the module docstring's first two steps)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (2, 3, 4)):
        raise DataError(
            f"an image must be (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA, got {image.shape}"
        )
    if min(image.shape[:2]) < 1:
        raise DataError(f"the image is empty: {image.shape}")
    x = unit_range(image)
    if x.ndim == 2:
        return x
    if x.shape[2] == 3:
        return x @ LUMA
    colour = x[:, :, 0] if x.shape[2] == 2 else x[:, :, :3] @ LUMA
    alpha = x[:, :, -1]
    if alpha.min() == 1:
        return colour
    weight = alpha.sum()
    if weight == 0:
        raise DataError("the image has no ink: it is fully transparent")
    # Strokes drawn on a transparent canvas: lay them over the colour they stand out from.
    behind = np.float32(1.0 if (alpha * colour).sum() / weight < 0.5 else 0.0)
    return alpha * colour + (1 - alpha) * behind


def unit_range(image: np.ndarray) -> np.ndarray:
    """Pixel values as float32 in [0, 1]: bool as is, uint16 / 65535, other integers / 255,
    floats as they are ([0, 1]) or / 255 when their maximum is above 1."""
    if image.dtype == np.bool_:
        return image.astype(np.float32)
    if np.issubdtype(image.dtype, np.integer):
        top = 65535 if image.dtype == np.uint16 else 255
    elif np.issubdtype(image.dtype, np.floating):
        if not np.all(np.isfinite(image)):
            raise DataError("the image has NaN or infinite values")
        top = 255 if image.max() > 1 else 1
    else:
        raise DataError(f"image pixels must be numbers, got dtype {image.dtype}")
    if image.min() < 0 or image.max() > top:
        raise DataError(
            f"image values must be in 0..{top} for dtype {image.dtype}, "
            f"got {image.min()}..{image.max()}"
        )
    return image.astype(np.float32) / np.float32(top)


def _invert_paper(x: np.ndarray) -> np.ndarray:
    """Light ink on a black page: inverted when the border is light, the paper's level
    subtracted and the ink stretched to 1, paper noise zeroed. (H, W) -> (H, W) float32."""
    border = np.concatenate([x[0], x[-1], x[1:-1, 0], x[1:-1, -1]])
    if np.median(border) > 0.5:
        x = 1 - x
        border = 1 - border
    paper, ink = np.float32(np.median(border)), x.max()
    if ink - paper < MIN_CONTRAST:
        raise DataError(
            f"the image has no ink: every pixel is within {MIN_CONTRAST:.0%} of the "
            "background's brightness"
        )
    x = np.clip((x - paper) / (ink - paper), 0, 1)
    x[x < NOISE] = 0
    return x


def _ink_box(ink: np.ndarray) -> tuple[int, int, int, int]:
    """top, bottom, left, right (exclusive) of the True pixels of `ink` (H, W)."""
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _resize(box: np.ndarray) -> np.ndarray:
    """The ink's box (h, w) scaled so its longer side is 20 px, brightest pixel set to 1."""
    h, w = box.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # Pillow's (width, height)
    resized = Image.fromarray(box).resize(size, Image.Resampling.BILINEAR)
    out = np.clip(np.asarray(resized, dtype=np.float32), 0, 1)
    return out / out.max()


def _place(box: np.ndarray) -> np.ndarray:
    """`box` (h, w), h and w <= 20, in a 28×28 black field, shifted by whole pixels so its
    centre of mass is at (14, 14), but never past an edge."""
    h, w = box.shape
    mass = box.sum()
    row = (box.sum(axis=1) @ np.arange(h)) / mass
    col = (box.sum(axis=0) @ np.arange(w)) / mass
    top = int(np.clip(round(CENTRE - row), 0, SIZE - h))
    left = int(np.clip(round(CENTRE - col), 0, SIZE - w))
    field = np.zeros((SIZE, SIZE), dtype=np.float32)
    field[top : top + h, left : left + w] = box
    return field
