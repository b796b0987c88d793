"""The page of `npnet serve` in real headless Chromium (Debian's, driven by Playwright):
digits drawn with the mouse and with touch, undo, clear, files chosen and dropped, errors,
and an MLP run. Every state is saved as a screenshot under test-artifacts/serve/ (or
$NPNET_TEST_ARTIFACTS/serve/).

The tests skip only when Chromium is not installed (`.ci/run` installs it with apt).
"""

from __future__ import annotations

import base64
import itertools
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import ARTIFACTS, encode
from playwright.sync_api import Page, expect, sync_playwright

from npnet.engine import runs as run_files

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
SCREENSHOTS = ARTIFACTS / "serve"
# On a loaded 2-core machine the browser, the server and the tests share the cores: allow
# each expectation far more than the few milliseconds an answer takes on a quiet one.
expect.set_options(timeout=30_000)

# Strokes in the pad's own pixels (280 × 280), as a person would draw them.
SEVEN = [[(60, 55), (215, 55)], [(215, 55), (175, 130), (125, 240)]]
ONE = [[(150, 40), (140, 140), (132, 240)]]
ZERO = [
    [
        (140 + 62 * math.sin(t / 24 * 2 * math.pi), 140 - 95 * math.cos(t / 24 * 2 * math.pi))
        for t in range(25)
    ]
]
DIGITS = {"7": SEVEN, "1": ONE, "0": ZERO}


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """One Chromium for the session, with a fresh profile and touch input enabled."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed: apt-get install chromium (.ci/run installs it)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 960},
            has_touch=True,
        )
        yield context
        context.close()


def is_error(kind: str, text: str) -> bool:
    """A console error, other than Chromium's note on each 4xx the tests ask for."""
    return kind == "error" and not text.startswith("Failed to load resource")


def open_page(browser, server) -> Page:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if is_error(m.type, m.text) else None)
    page.errors = errors
    page.goto(server.url + "/")
    expect(page.locator("body")).to_have_attribute("data-run", "loaded")
    return page


@pytest.fixture
def cnn_page(browser, cnn_server):
    page = open_page(browser, cnn_server)
    yield page
    assert page.errors == []
    page.close()


@pytest.fixture
def mlp_page(browser, mlp_server):
    page = open_page(browser, mlp_server)
    yield page
    assert page.errors == []
    page.close()


def pad_origin(page: Page) -> tuple[float, float]:
    box = page.locator("#pad").bounding_box()
    return box["x"], box["y"]


def draw(page: Page, strokes) -> None:
    """Each stroke as a press, moves of about 10 px, and a release of the mouse."""
    x0, y0 = pad_origin(page)
    for stroke in strokes:
        page.mouse.move(x0 + stroke[0][0], y0 + stroke[0][1])
        page.mouse.down()
        for (xa, ya), (x, y) in itertools.pairwise(stroke):
            steps = max(1, round(math.hypot(x - xa, y - ya) / 10))
            page.mouse.move(x0 + x, y0 + y, steps=steps)
        page.mouse.up()
    settle(page)


def settle(page: Page) -> None:
    """Wait until the answer for the latest input is on the page."""
    expect(page.locator("body")).to_have_attribute("data-busy", "false")


def shown(page: Page) -> tuple[str, str]:
    return page.inner_text("#predicted-class"), page.inner_text("#predicted-probability")


def percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def screenshot(page: Page, name: str) -> None:
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def pad_png(page: Page) -> bytes:
    url = page.evaluate("document.getElementById('pad').toDataURL('image/png')")
    return base64.b64decode(url.split(",", 1)[1])


def check_answer_matches_the_api(page: Page, server) -> dict:
    """The class, its probability and every bar on the page are the API's answer for the
    pad's own pixels."""
    status, answer = server.post(pad_png(page), "image/png")
    assert status == 200, answer
    probabilities = answer["probabilities"]
    assert shown(page) == (str(answer["class"]), percent(probabilities[answer["class"]]))
    bars = page.locator("#bars li .pct").all_inner_texts()
    assert bars == [percent(p) for p in probabilities]
    top = page.locator("#bars li.top")
    expect(top).to_have_count(1)
    expect(top).to_have_attribute("data-digit", str(answer["class"]))
    return answer


@pytest.mark.parametrize("digit", list(DIGITS))
def test_a_drawn_digit_is_recognized(digit, cnn_page, cnn_server):
    draw(cnn_page, DIGITS[digit])
    expect(cnn_page.locator("#answer-panel")).to_have_attribute("data-state", "shown")
    answer = check_answer_matches_the_api(cnn_page, cnn_server)
    assert answer["class"] == int(digit), answer["probabilities"]
    assert answer["probabilities"][int(digit)] > 0.5
    # what the network saw, and its first convolution's eight feature maps, are drawn
    seen = cnn_page.evaluate(
        "Array.from(document.getElementById('seen').getContext('2d')"
        ".getImageData(0, 0, 28, 28).data)"
    )
    grey = np.array(seen).reshape(28, 28, 4)[:, :, 0] / 255
    np.testing.assert_allclose(grey, answer["image"], atol=1 / 255 + 1e-3)
    expect(cnn_page.locator("#maps-panel")).to_be_visible()
    expect(cnn_page.locator("#maps canvas")).to_have_count(8)
    screenshot(cnn_page, f"cnn-drawn-{digit}")


def test_the_header_names_the_run(cnn_page, runs):
    saved = run_files.read_summary(runs["cnn"])
    assert cnn_page.inner_text("#run-name") == f"serve-cnn ({runs['cnn'].name})"
    assert cnn_page.inner_text("#run-accuracy") == f"{100 * saved['test_accuracy']:.2f} %"
    assert cnn_page.inner_text("#run-params") == f"{saved['num_params']:,}"
    architecture = cnn_page.inner_text("#run-architecture")
    assert architecture.startswith("conv2d(filters=8, kernel=5, padding=2) 8×28×28 → relu")
    assert architecture.endswith("dense(units=10) 10")


def test_undo_takes_back_the_last_stroke_and_clear_resets(cnn_page, cnn_server):
    draw(cnn_page, SEVEN)
    before_png, before = pad_png(cnn_page), shown(cnn_page)
    assert before[0] == "7"
    draw(cnn_page, [[(100, 200), (60, 250), (200, 250), (100, 200)]])  # a stray stroke
    assert pad_png(cnn_page) != before_png
    screenshot(cnn_page, "cnn-stray-stroke")

    cnn_page.click("#undo")
    settle(cnn_page)
    assert pad_png(cnn_page) == before_png
    assert shown(cnn_page) == before
    check_answer_matches_the_api(cnn_page, cnn_server)
    screenshot(cnn_page, "cnn-after-undo")

    cnn_page.click("#clear")
    settle(cnn_page)
    expect(cnn_page.locator("#answer-panel")).to_have_attribute("data-state", "empty")
    assert cnn_page.inner_text("#predicted-class") == "?"
    assert cnn_page.locator("#bars li .pct").all_inner_texts() == [""] * 10
    expect(cnn_page.locator("#bars li.top")).to_have_count(0)
    expect(cnn_page.locator("#maps canvas")).to_have_count(0)
    white = cnn_page.evaluate(
        "Array.from(document.getElementById('pad').getContext('2d')"
        ".getImageData(0, 0, 280, 280).data).every((v) => v === 255)"
    )
    assert white
    expect(cnn_page.locator("#undo")).to_be_disabled()
    expect(cnn_page.locator("#clear")).to_be_disabled()
    screenshot(cnn_page, "cnn-cleared")

    draw(cnn_page, ONE)  # and the page still works after clearing
    assert shown(cnn_page)[0] == "1"


def test_undo_of_the_only_stroke_is_a_clear(cnn_page):
    draw(cnn_page, ONE)
    cnn_page.click("#undo")
    settle(cnn_page)
    expect(cnn_page.locator("#answer-panel")).to_have_attribute("data-state", "empty")


def test_a_digit_drawn_by_touch_is_recognized(cnn_page):
    """Real touch events (Chromium turns them into pointer events of type "touch")."""
    cdp = cnn_page.context.new_cdp_session(cnn_page)
    x0, y0 = pad_origin(cnn_page)
    (stroke,) = ONE
    points = [
        (x0 + a[0] + (b[0] - a[0]) * t / 10, y0 + a[1] + (b[1] - a[1]) * t / 10)
        for a, b in itertools.pairwise(stroke)
        for t in range(10)
    ]
    cdp.send(
        "Input.dispatchTouchEvent",
        {"type": "touchStart", "touchPoints": [{"x": points[0][0], "y": points[0][1]}]},
    )
    for x, y in points[1:]:
        cdp.send(
            "Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]}
        )
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    settle(cnn_page)
    assert shown(cnn_page)[0] == "1"
    screenshot(cnn_page, "cnn-touch-1")


def test_a_chosen_mnist_test_image_shows_its_label(cnn_page, mnist_test, tmp_path):
    images, labels = mnist_test
    path = tmp_path / "mnist-test-0.png"
    path.write_bytes(encode(images[0]))
    cnn_page.set_input_files("#file", path)
    settle(cnn_page)
    assert shown(cnn_page)[0] == str(labels[0])
    expect(cnn_page.locator("#clear")).to_be_enabled()
    screenshot(cnn_page, "cnn-chosen-mnist-test-0")


def drop_file(page: Page, data: bytes, name: str, media_type: str) -> None:
    """A file dropped on the drop zone, as a drag from the desktop would deliver it."""
    page.evaluate(
        """([b64, name, type]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type }));
            const drop = document.getElementById("drop");
            for (const kind of ["dragover", "drop"]) {
                drop.dispatchEvent(new DragEvent(kind, { dataTransfer: transfer, bubbles: true }));
            }
        }""",
        [base64.b64encode(data).decode(), name, media_type],
    )
    settle(page)


def test_a_dropped_photo_of_a_digit_shows_its_label(cnn_page, mnist_test):
    """MNIST test image 1 as a photo would show it: dark on light, large, off-centre, JPEG."""
    images, labels = mnist_test
    big = np.kron(255 - images[1], np.ones((5, 5), np.uint8))
    paper = np.full((360, 300), 240, np.uint8)
    paper[150:290, 130:270] = big
    drop_file(cnn_page, encode(paper, "JPEG", quality=90), "photo.jpg", "image/jpeg")
    assert shown(cnn_page)[0] == str(labels[1])
    screenshot(cnn_page, "cnn-dropped-photo-1")


def test_files_that_cannot_be_read_are_explained(cnn_page):
    drop_file(cnn_page, encode(np.full((100, 100), 255, np.uint8)), "blank.png", "image/png")
    expect(cnn_page.locator("#answer-panel")).to_have_attribute("data-state", "error")
    assert "ink" in cnn_page.inner_text("#message")
    screenshot(cnn_page, "cnn-blank-image")
    drop_file(cnn_page, b"just some text", "notes.txt", "text/plain")
    assert cnn_page.inner_text("#message") == "notes.txt is not an image this browser can read"
    draw(cnn_page, SEVEN)  # drawing again clears the message
    assert shown(cnn_page)[0] == "7"
    assert cnn_page.inner_text("#message") == ""


def test_the_page_works_with_an_mlp(mlp_page, mlp_server):
    assert mlp_page.inner_text("#run-name").startswith("serve-mlp")
    expect(mlp_page.locator("#maps-panel")).to_be_hidden()
    draw(mlp_page, SEVEN)
    answer = check_answer_matches_the_api(mlp_page, mlp_server)
    assert answer["class"] == 7
    assert answer["feature_maps"] is None
    expect(mlp_page.locator("#maps-panel")).to_be_hidden()
    screenshot(mlp_page, "mlp-drawn-7")
