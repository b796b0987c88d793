"""Shared fixtures. Tests never download: NPNET_NO_DOWNLOAD is set for the whole session."""

import os
import signal
from pathlib import Path

import pytest

os.environ["NPNET_NO_DOWNLOAD"] = "1"

# A test suite started in the background by a non-interactive shell (`make test &`, nohup)
# inherits SIGINT ignored, and so would every process it starts: Python then installs no
# KeyboardInterrupt handler and the Ctrl-C tests' SIGINTs do nothing. The tests need Ctrl-C
# as a terminal delivers it; their child processes get the default back from this handler.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def write_config(tmp_path):
    """Write a YAML text to tmp_path/name and return its path."""

    def write(text: str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture(scope="session")
def cnn_run(tmp_path_factory):
    """A run of configs/cnn.yaml trained briefly on real MNIST (3,000 images, one epoch):
    enough to classify most digits, a few seconds. Shared by the predict and export tests;
    they only read it."""
    from npnet.config import load_config
    from npnet.engine.loop import fit

    config = load_config(
        Path(__file__).resolve().parents[1] / "configs" / "cnn.yaml",
        ["data.train_size=3000", "train.epochs=1"],
    )
    run_dir, summary = fit(config, tmp_path_factory.mktemp("cnn-runs"))
    assert summary["status"] == "completed"
    return run_dir
