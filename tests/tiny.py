"""The small config the tests train: an MLP on scikit-learn's bundled 8x8 digits (1,797
images), a second or two per run. Tests derive variants with `str.replace` or `--set`."""

TINY_MLP = """\
name: tiny
data: {dataset: digits, validation: 200, normalize: scale}
model:
  layers:
    - flatten
    - dense: {units: 32}
    - relu
    - dense: {units: 10}
optimizer: {name: sgd, lr: 0.1, momentum: 0.9}
train: {epochs: 3, batch_size: 32}
"""
