"""The JSON API of `npnet serve`, over real HTTP to a real server: answers that agree with
the network run directly, every kind of bad request (a 4xx with a JSON error, and the
server goes on serving), and a burst of concurrent requests that all answer correctly."""

from __future__ import annotations

import http.client
import io
import json
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import numpy as np
import pytest
from conftest import encode
from PIL import Image

from npnet.engine import runs as run_files
from npnet.engine.evaluate import load_run
from npnet.functional.activations import softmax
from npnet.tools.serve.app import MAX_BODY_BYTES
from npnet.tools.serve.model import MAX_PIXELS


def as_json_image(pixels: np.ndarray) -> dict:
    return {"image": (pixels / 255).tolist()}


@pytest.mark.parametrize("kind", ["cnn", "mlp"])
def test_run_summary(kind, request, runs):
    server = request.getfixturevalue(f"{kind}_server")
    status, run = server.get("/api/run")
    saved = run_files.read_summary(runs[kind])
    assert status == 200
    assert run["run"] == runs[kind].name
    assert run["name"] == f"serve-{kind}"
    assert run["test_accuracy"] == saved["test_accuracy"] > 0.9
    assert run["num_params"] == saved["num_params"]
    assert run["feature_maps"] is (kind == "cnn")
    assert run["max_body_bytes"] == MAX_BODY_BYTES
    first = run["layers"][0]
    if kind == "cnn":
        assert first == {
            "index": 0,
            "layer": "conv2d",
            "output_shape": [8, 28, 28],
            "params": 8 * 25 + 8,
            "args": {"filters": 8, "kernel": 5, "padding": 2},
            "runs": None,  # in config order (Network.reorderings)
        }
    else:
        assert [layer["layer"] for layer in run["layers"]] == ["flatten", "dense", "relu", "dense"]


@pytest.mark.parametrize("kind", ["cnn", "mlp"])
def test_json_digit_gets_the_networks_own_probabilities(kind, request, runs, mnist_test):
    """A JSON 28×28 array is the digit the network sees: the answer equals the run's network
    applied to the same test images as normalized for training (so normalization is the
    run's own, exactly)."""
    server = request.getfixturevalue(f"{kind}_server")
    exp = load_run(runs[kind])
    images, labels = mnist_test
    for index in range(5):
        status, answer = server.post_json(as_json_image(images[index]))
        assert status == 200, answer
        expected = softmax(exp.net.forward(exp.dataset.x_test[index : index + 1]))[0]
        np.testing.assert_allclose(answer["probabilities"], expected, rtol=1e-4, atol=1e-6)
        assert answer["class"] == int(np.argmax(expected)) == labels[index]
        np.testing.assert_allclose(answer["image"], images[index] / 255, atol=5e-4)
        if kind == "mlp":
            assert answer["feature_maps"] is None


def test_cnn_feature_maps_are_its_first_convolution(cnn_server, runs, mnist_test):
    exp = load_run(runs["cnn"])
    images, _ = mnist_test
    _, answer = cnn_server.post_json(as_json_image(images[3]))
    maps = answer["feature_maps"]
    assert maps["layer"] == 0
    assert maps["shape"] == [8, 28, 28]
    conv = exp.net.layers[0].forward(exp.dataset.x_test[3:4], training=False)[0]
    np.testing.assert_allclose(maps["maps"], conv, atol=1e-4)


@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_uploaded_mnist_digits_are_read(image_format, cnn_server, mnist_test):
    images, labels = mnist_test
    right = 0
    for index in range(20):
        status, answer = cnn_server.post(
            encode(images[index], image_format), f"image/{image_format.lower()}"
        )
        assert status == 200, answer
        assert len(answer["probabilities"]) == 10
        assert abs(sum(answer["probabilities"]) - 1) < 1e-5
        seen = np.array(answer["image"])
        assert seen.shape == (28, 28) and seen.min() >= 0 and seen.max() <= 1
        right += answer["class"] == labels[index]
    assert right >= 18


def test_a_photo_like_upload_is_read(cnn_server, mnist_test):
    """Dark ink on light paper, large, off-centre, colour JPEG: preprocessing makes it MNIST."""
    images, labels = mnist_test
    digit = np.asarray(Image.fromarray(255 - images[0]).resize((140, 140), Image.BICUBIC))
    paper = np.full((400, 300), 235, np.uint8)
    paper[200:340, 30:170] = np.minimum(paper[200:340, 30:170], digit)
    photo = np.repeat(paper[:, :, None], 3, axis=2)
    status, answer = cnn_server.post(encode(photo, "JPEG", quality=85), "image/jpeg")
    assert status == 200, answer
    assert answer["class"] == labels[0]


def png_of_size(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def gif_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (28, 28), 255).save(buffer, format="GIF")
    return buffer.getvalue()


DIGIT_PNG = encode(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8))
BAD_REQUESTS = {
    # name: (body, content type, status, words the error must contain)
    "not an image": (b"hello, world", "image/png", 400, "not a PNG or JPEG"),
    "a GIF": (gif_bytes(), "image/png", 400, "GIF"),
    "a truncated PNG": (DIGIT_PNG[: len(DIGIT_PNG) // 2], "image/png", 400, "damaged"),
    "a truncated JPEG": (
        encode(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8), "JPEG")[:1500],
        "image/jpeg",
        400,
        "damaged",
    ),
    "an empty canvas": (encode(np.full((280, 280), 255, np.uint8)), "image/png", 422, "ink"),
    "an empty JSON image": (
        json.dumps({"image": [[0] * 28] * 28}).encode(),
        "application/json",
        422,
        "ink",
    ),
    "too many pixels": (png_of_size(6000, 5000), "image/png", 413, f"{MAX_PIXELS:,} pixels"),
    "a decompression bomb": (png_of_size(20000, 20000), "image/png", 413, "pixels"),
    "no body": (b"", "image/png", 400, "no body"),
    "no content type": (DIGIT_PNG, None, 415, "Content-Type"),
    "text": (b"7", "text/plain", 415, "text/plain"),
    "a form": (b"a=1", "application/x-www-form-urlencoded", 415, "Content-Type"),
    "multipart": (b"--x--", "multipart/form-data; boundary=x", 415, "multipart/form-data"),
    "malformed JSON": (b'{"image": [[0, 1', "application/json", 400, "malformed JSON"),
    "not UTF-8": (b'{"image": "\xff"}', "application/json", 400, "malformed JSON"),
    "NaN": (b'{"image": NaN}', "application/json", 400, "NaN"),
    "deeply nested": (b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "too deeply"),
    "a bare array": (json.dumps([[0] * 28] * 28).encode(), "application/json", 400, "a JSON list"),
    "another key": (json.dumps({"pixels": 1}).encode(), "application/json", 400, "['pixels']"),
    "a wrong shape": (
        json.dumps({"image": [[0.5] * 28] * 27}).encode(),
        "application/json",
        400,
        "[27, 28]",
    ),
    "ragged rows": (
        json.dumps({"image": [[0.5] * 28] * 27 + [[0.5]]}).encode(),
        "application/json",
        400,
        "different lengths",
    ),
    "strings": (
        json.dumps({"image": [["a"] * 28] * 28}).encode(),
        "application/json",
        400,
        "strings",
    ),
    "values over 1": (
        json.dumps({"image": [[255] * 28] * 28}).encode(),
        "application/json",
        400,
        "from 255 to 255",
    ),
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_bad_request_is_a_json_4xx_and_the_server_goes_on(name, cnn_server):
    body, content_type, expected_status, words = BAD_REQUESTS[name]
    status, answer = cnn_server.post(body, content_type)
    assert status == expected_status, answer
    assert set(answer) == {"error"} and words in answer["error"], answer
    assert "Traceback" not in answer["error"]
    assert cnn_server.post_json({"image": [[0.0] * 13 + [1.0] * 2 + [0.0] * 13] * 28})[0] == 200


def raw_request(server, method: str, path: str, headers: dict, body=None) -> tuple[int, dict]:
    """A request through http.client, which sends the path and headers exactly as given."""
    address = urlsplit(server.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for key, value in headers.items():
            connection.putheader(key, value)
        connection.endheaders()
        if body is not None:
            try:
                for chunk in body:
                    connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                connection.send(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered before the body ended
        response = connection.getresponse()
        assert response.getheader("Content-Type") == "application/json"
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_a_body_declared_over_the_limit_is_refused_before_it_is_sent(cnn_server):
    headers = {"Content-Type": "image/png", "Content-Length": str(MAX_BODY_BYTES + 1)}
    status, answer = raw_request(cnn_server, "POST", "/api/predict", headers)
    assert status == 413
    assert f"{MAX_BODY_BYTES:,} bytes" in answer["error"]


def test_a_chunked_body_over_the_limit_is_refused(cnn_server):
    chunk = bytes(64 * 1024)
    chunks = [chunk] * (MAX_BODY_BYTES // len(chunk)) + [b"x"]
    headers = {"Content-Type": "image/png", "Transfer-Encoding": "chunked"}
    status, answer = raw_request(cnn_server, "POST", "/api/predict", headers, chunks)
    assert status == 413
    assert f"{MAX_BODY_BYTES:,} bytes" in answer["error"]
    # exactly at the limit is read (and then judged as an image, which it is not)
    status, answer = raw_request(cnn_server, "POST", "/api/predict", headers, chunks[:-1])
    assert status == 400 and "not a PNG or JPEG" in answer["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/static/../npnet/tools/serve/app.py",
        "/static/%2e%2e/app.py",
        "/static/..%2fmodel.py",
        "/static/index.html",
        "/static/",
        "/index.html",
        "/app.js",
        "/etc/passwd",
        "//etc/passwd",
        "/static/app.js/../../../../etc/passwd",
    ],
)
def test_no_request_names_a_file(path, cnn_server):
    status, answer = raw_request(cnn_server, "GET", path, {})
    assert status == 404
    assert set(answer) == {"error"} and answer["error"].startswith("no such page: ")


def test_the_page_and_its_files_are_served(cnn_server):
    for path, kind in [
        ("/", "text/html"),
        ("/static/app.js", "text/javascript"),
        ("/static/style.css", "text/css"),
    ]:
        address = urlsplit(cnn_server.url)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        connection.request("GET", path)
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type").startswith(kind)
        assert b"http" not in response.read().replace(b"http-equiv", b"")  # nothing remote
        connection.close()


def test_wrong_methods_are_405(cnn_server):
    assert raw_request(cnn_server, "GET", "/api/predict", {}) == (
        405,
        {"error": "method not allowed"},
    )
    assert raw_request(cnn_server, "DELETE", "/api/run", {})[0] == 405


def test_a_burst_of_200_requests_from_8_threads_all_answer_correctly(cnn_server, mnist_test):
    """Uploads and JSON digits at once: every answer equals the same request's answer alone,
    to the last bit (the forward passes never interleave)."""
    images, _ = mnist_test
    requests = [(encode(images[i]), "image/png") for i in range(12)]
    requests += [
        (json.dumps(as_json_image(images[i])).encode(), "application/json") for i in range(12, 16)
    ]
    requests += [(b"not an image", "image/png")]
    expected = [cnn_server.post(body, kind) for body, kind in requests]
    assert [status for status, _ in expected] == [200] * 16 + [400]
    work = [requests[i % len(requests)] for i in range(200)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda request: cnn_server.post(*request), work))
    assert answers == [expected[i % len(requests)] for i in range(200)]
