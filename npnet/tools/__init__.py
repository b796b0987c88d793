"""Tools built on the engine: they run networks for a purpose other than training one.

gradcheck.py   analytic vs numerical gradients, of a config's network or every component
explain.py     the numbers of the tutorial chapters that train nothing
predict.py     a trained run's class probabilities for your own images (npnet predict)
export.py      a trained run as an ONNX model (npnet export; the `export` extra: onnx)
sweep/         hyperparameter sweeps on Optuna (npnet sweep; the `sweep` extra)
serve/         the draw-a-digit web page and its JSON API (npnet serve; the `serve` extra)

export, sweep and serve need their extras; only the CLI command that uses one imports it.
"""
