"""Fixtures of the `npnet serve` tests: two briefly trained MNIST runs (a CNN and an MLP), a
real `npnet serve` process for each on a free port, and MNIST test digits as PNG bytes.

The servers are the real command line in a subprocess, stopped with SIGTERM at the end of
the session; what they wrote on stderr is checked for tracebacks there.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from npnet.config import load_config
from npnet.data.mnist import load_mnist
from npnet.engine.loop import fit

CNN = """\
name: serve-cnn
seed: 0
data: {dataset: mnist, validation: 0, normalize: standard, train_size: 12000}
model:
  layers:
    - conv2d: {filters: 8, kernel: 5, padding: 2}
    - relu
    - max_pool2d: {size: 2}
    - flatten
    - dense: {units: 10}
loss: softmax_cross_entropy
optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
train: {epochs: 2, batch_size: 64}
"""
MLP = CNN.replace("name: serve-cnn", "name: serve-mlp").replace(
    """    - conv2d: {filters: 8, kernel: 5, padding: 2}
    - relu
    - max_pool2d: {size: 2}
    - flatten
    - dense: {units: 10}""",
    """    - flatten
    - dense: {units: 64}
    - relu
    - dense: {units: 10}""",
)


@dataclass
class Served:
    """A running `npnet serve`: its base URL, run directory and process."""

    url: str
    run_dir: Path
    process: subprocess.Popen
    stderr: Path

    def get(self, path: str) -> tuple[int, dict]:
        return answer(urllib.request.Request(self.url + path))

    def post(self, body: bytes, content_type: str | None) -> tuple[int, dict]:
        headers = {} if content_type is None else {"Content-Type": content_type}
        request = urllib.request.Request(self.url + "/api/predict", body, headers)
        return answer(request)

    def post_json(self, document: object) -> tuple[int, dict]:
        return self.post(json.dumps(document).encode(), "application/json")


def answer(request: urllib.request.Request) -> tuple[int, dict]:
    """(status, JSON body) of a request; a 4xx or 5xx answer is returned, not raised."""
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.headers["Content-Type"] == "application/json"
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        assert error.headers["Content-Type"] == "application/json", error.headers
        return error.code, json.loads(error.read())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(run_dir: Path, log_dir: Path) -> Served:
    """`npnet serve RUN_DIR --port P` in a subprocess, once GET /api/run answers."""
    port = free_port()
    stderr = log_dir / f"serve-{run_dir.name}.stderr"
    process = subprocess.Popen(
        [sys.executable, "-m", "npnet", "serve", str(run_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=stderr.open("wb"),
    )
    served = Served(f"http://127.0.0.1:{port}", run_dir, process, stderr)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"npnet serve exited with {process.returncode}: {stderr.read_text()}")
        try:
            served.get("/api/run")
            return served
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    process.kill()
    pytest.fail("npnet serve did not answer within 120 s")


def stop_server(served: Served) -> None:
    """SIGTERM, as Ctrl-C would: uvicorn shuts down cleanly and the command exits with 0."""
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=30) == 0
    log = served.stderr.read_text()
    assert "Traceback" not in log, log


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A CNN and an MLP trained for two epochs on 12,000 MNIST images (a few seconds each;
    about 96 % and 94 % test accuracy)."""
    base = tmp_path_factory.mktemp("serve-runs")
    trained = {}
    for kind, text in (("cnn", CNN), ("mlp", MLP)):
        path = base / f"{kind}.yaml"
        path.write_text(text)
        run_dir, summary = fit(load_config(path), base / "runs")
        assert summary["status"] == "completed"
        trained[kind] = run_dir
    return trained


@pytest.fixture(scope="session")
def cnn_server(runs, tmp_path_factory):
    served = start_server(runs["cnn"], tmp_path_factory.mktemp("serve-logs"))
    yield served
    stop_server(served)


@pytest.fixture(scope="session")
def mlp_server(runs, tmp_path_factory):
    served = start_server(runs["mlp"], tmp_path_factory.mktemp("serve-logs"))
    yield served
    stop_server(served)


@pytest.fixture(scope="session")
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    """MNIST's test images (10000, 28, 28) uint8 and labels (10000,)."""
    _, _, x_test, y_test = load_mnist()
    return x_test.reshape(-1, 28, 28), y_test


def encode(pixels: np.ndarray, image_format: str = "PNG", **options) -> bytes:
    """A uint8 (H, W) or (H, W, 3) array as PNG or JPEG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=image_format, **options)
    return buffer.getvalue()


ARTIFACTS = Path(
    os.environ.get("NPNET_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")
)
