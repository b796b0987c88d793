"""How often `npnet predict` reads MNIST test digits right once they look like photos.

    .venv/bin/python benchmarks/predict_photos.py RUN_DIR [--count 1000] [--out DIR]

Each of the first `--count` MNIST test images becomes a "photo": inverted to dark ink on
light paper (paper level 200..250, ink 0..60, a little Gaussian noise), scaled up 3 to 8
times (bilinear), placed at a random, off-centre position on a larger canvas (the digit
covers at most half of each side; the canvas is 1.6 to 3 times the digit), saved as a JPEG
(quality 70..95), all drawn from one seed. `npnet predict RUN_DIR DIR --json` (the real
command, in a subprocess) classifies the folder; its answers are compared with the labels.

What the preprocessing changed, measured on the same photos through the same network:
- original: the MNIST images themselves (the ceiling);
- naive: the whole photo resized to 28×28, nothing else (what a user might try first);
- inverted: the same, inverted to light on dark;
- npnet predict: the full preprocessing (npnet.data.digits.prepare_digit);
and how far the prepared photos are from the original 28×28 images (mean |difference|, in
[0, 1] pixel units). Writes photos_result.json to --out. Checks nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from npnet.data.digits import prepare_digit, read_image
from npnet.data.mnist import load_mnist
from npnet.tools.predict import Predictor


def make_photo(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """An MNIST digit (28, 28) uint8 as a photo-like RGB image (see the module docstring)."""
    factor = rng.uniform(3, 8)
    side = round(28 * factor)
    paper, ink = rng.uniform(200, 250), rng.uniform(0, 60)
    scaled = np.asarray(
        Image.fromarray(digit).resize((side, side), Image.Resampling.BILINEAR), dtype=np.float64
    )
    dark_on_light = paper - (paper - ink) * scaled / 255
    height, width = (round(side * rng.uniform(1.6, 3.0)) for _ in range(2))
    canvas = np.full((height, width), paper)
    # off-centre: anywhere but the middle band, in both directions at once
    top = int(rng.choice([rng.integers(0, (height - side) // 4 + 1), height - side]))
    left = int(rng.integers(0, width - side + 1))
    canvas[top : top + side, left : left + side] = dark_on_light
    canvas += rng.normal(0, 3, canvas.shape)
    grey = np.clip(canvas, 0, 255).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")


def naive(pixels: np.ndarray, invert: bool) -> np.ndarray:
    """The whole photo resized to 28×28 grey, values in [0, 1] (inverted if asked)."""
    grey = Image.fromarray(pixels).convert("L").resize((28, 28), Image.Resampling.BILINEAR)
    x = np.asarray(grey, dtype=np.float32) / 255
    return 1 - x if invert else x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/npnet-photos"))
    args = parser.parse_args()

    _, _, x_test, y_test = load_mnist(None)
    digits, labels = x_test[: args.count].reshape(-1, 28, 28), y_test[: args.count]
    rng = np.random.default_rng(args.seed)
    photos = args.out / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    for old in photos.glob("*.jpg"):
        old.unlink()
    for i, (digit, label) in enumerate(zip(digits, labels, strict=True)):
        make_photo(digit, rng).save(
            photos / f"{i:04d}-label{label}.jpg", quality=int(rng.integers(70, 96))
        )

    start = time.perf_counter()
    command = [sys.executable, "-m", "npnet", "predict", str(args.run_dir), str(photos)]
    result = subprocess.run([*command, "--json"], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"npnet predict failed (exit {result.returncode}):\n{result.stderr}")
    answers = json.loads(result.stdout)
    predicted = {Path(a["input"]).name: a["class"] for a in answers}
    files = sorted(photos.glob("*.jpg"))
    truth = np.array([int(f.stem.split("label")[1]) for f in files])
    cli = np.array([predicted[f.name] for f in files])

    predictor = Predictor(args.run_dir)
    pixels = [read_image(f) for f in files]
    prepared = np.stack([prepare_digit(p) for p in pixels])
    variants = {
        "original": digits / 255.0,
        "naive": np.stack([naive(p, invert=False) for p in pixels]),
        "inverted": np.stack([naive(p, invert=True) for p in pixels]),
        "npnet predict": prepared,
    }
    accuracy = {
        name: float(np.mean(predictor.probabilities(x).argmax(axis=1) == labels))
        for name, x in variants.items()
    }
    difference = np.abs(prepared - digits / 255.0)
    report = {
        "run_dir": str(args.run_dir),
        "photos": len(files),
        "cli_accuracy": float(np.mean(cli == truth)),
        "cli_seconds": round(seconds, 2),
        "accuracy_by_preprocessing": accuracy,
        "mean_abs_difference_prepared_vs_original": float(difference.mean()),
        "share_of_pixels_within_0.1_of_the_original": float(np.mean(difference < 0.1)),
    }
    (args.out / "photos_result.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
