"""Nielsen's network2.py training loop, written out in plain NumPy: the yardstick for
configs/classics/nielsen-network2.yaml (docs/classics.md).

    .venv/bin/python benchmarks/nielsen_network2.py [SEED] [--epochs 30] [--dtype float64]

As in the book's chapter 3 run that gave "97.92 percent on the validation data": 784-100-10
sigmoid neurons, `large_weight_initializer` (weights and biases N(0, 1)), the cross-entropy
cost, SGD on mini-batches of m = 10 with η = 0.5, L2 with λ = 5.0 over n = 50,000:

    w ← (1 − ηλ/n)·w − (η/m)·Σ_x ∂C_x/∂w,   δ_out = a − y,   δ_hidden = (δ_out·W2ᵀ)·a₁(1 − a₁)

on his split of MNIST's training file (the first 50,000 images train, the last 10,000 are
validation_data), pixels in [0, 1]. It prints the validation and test accuracy after every
epoch. One mini-batch step of the npnet config equals this rule to float32 rounding
(tests/test_classics.py); this script shows how much a whole run depends on the seed.
"""

from __future__ import annotations

import argparse

import numpy as np

from npnet.data import load_dataset

HIDDEN, ETA, LAMBDA, BATCH = 100, 0.5, 5.0, 10


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("seed", type=int, nargs="?", default=0)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)

    data = load_dataset("mnist", validation=0, normalize="scale")
    images = data.x_train.reshape(len(data.x_train), -1).astype(dtype)
    x_train, y_train = images[:50_000], data.y_train[:50_000]
    x_val, y_val = images[50_000:], data.y_train[50_000:]
    x_test, y_test = data.x_test.reshape(len(data.x_test), -1).astype(dtype), data.y_test
    targets = np.eye(10, dtype=dtype)[y_train]
    n = len(x_train)

    rng = np.random.default_rng(args.seed)
    w1, b1 = rng.standard_normal((784, HIDDEN)), rng.standard_normal(HIDDEN)
    w2, b2 = rng.standard_normal((HIDDEN, 10)), rng.standard_normal(10)
    w1, b1, w2, b2 = (p.astype(dtype) for p in (w1, b1, w2, b2))
    decay, rate = dtype.type(1 - ETA * LAMBDA / n), dtype.type(ETA / BATCH)

    def accuracy(x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(np.argmax(sigmoid(sigmoid(x @ w1 + b1) @ w2 + b2), axis=1) == y))

    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(n)
        for start in range(0, n, BATCH):
            batch = order[start : start + BATCH]
            x, y = x_train[batch], targets[batch]
            a1 = sigmoid(x @ w1 + b1)
            a2 = sigmoid(a1 @ w2 + b2)
            delta2 = a2 - y
            delta1 = (delta2 @ w2.T) * a1 * (1 - a1)
            w2 = decay * w2 - rate * (a1.T @ delta2)
            b2 = b2 - rate * delta2.sum(axis=0)
            w1 = decay * w1 - rate * (x.T @ delta1)
            b1 = b1 - rate * delta1.sum(axis=0)
        val, test = accuracy(x_val, y_val), accuracy(x_test, y_test)
        print(f"epoch {epoch:2d}  validation {val:.2%}  test {test:.2%}", flush=True)


if __name__ == "__main__":
    main()
