"""`npnet serve` on the command line: a free port chosen and printed, Ctrl-C stops it with
exit code 0, and each mistake (a missing extra, a bad run directory, a taken port) is one
line and exit code 2. Binding anything but loopback is warned about."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest
from typer.testing import CliRunner

from npnet.cli import app
from npnet.tools.serve.server import is_loopback


def npnet(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return lines[0]


def test_the_trainer_never_imports_the_web_server():
    code = "import sys, npnet.cli; print(sorted({'starlette', 'uvicorn'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


@pytest.mark.parametrize("missing", ["starlette", "uvicorn"])
def test_a_missing_extra_is_one_line_naming_it(missing, runs, monkeypatch, taken_port):
    """As if the extra were not installed: `missing` and its submodules cannot be imported,
    and npnet.tools.serve is imported afresh. (The port is taken, so a command that got past the
    imports would fail at once rather than serve.)"""
    for name in [name for name in sys.modules if name.split(".")[0] == missing]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, missing, None)
    for name in [name for name in sys.modules if name.startswith("npnet.tools.serve")]:
        monkeypatch.delitem(sys.modules, name)
    line = one_error_line(npnet("serve", str(runs["cnn"]), "--port", str(taken_port)))
    assert "pip install 'npnet[serve]'" in line


@pytest.fixture
def taken_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_a_missing_run_directory_is_one_line(tmp_path):
    line = one_error_line(npnet("serve", str(tmp_path / "nope")))
    assert "no such run directory" in line


def test_a_run_without_weights_is_one_line(runs, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(runs["cnn"], run_dir)
    (run_dir / "weights.npz").unlink()
    line = one_error_line(npnet("serve", str(run_dir), "--port", "0"))
    assert "weights.npz" in line


def test_a_taken_port_is_one_line(runs, taken_port):
    line = one_error_line(npnet("serve", str(runs["cnn"]), "--port", str(taken_port)))
    assert f"--port {taken_port}: cannot listen there" in line


def test_another_address_is_warned_about(runs):
    """192.0.2.1 (TEST-NET-1) is no address of this machine: the warning comes, then the
    error, and nothing listens beyond loopback."""
    result = npnet("serve", str(runs["cnn"]), "--host", "192.0.2.1", "--port", "0")
    assert result.exit_code == 2
    warning, error = result.stderr.strip().splitlines()
    assert warning.startswith("warning: --host 192.0.2.1: other machines that can reach it")
    assert error.startswith("error: --host 192.0.2.1 --port 0: cannot listen there")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("my-laptop.local", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_port_0_serves_on_a_free_port_until_ctrl_c(runs):
    process = subprocess.Popen(
        [sys.executable, "-m", "npnet", "serve", str(runs["mlp"]), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "300"},
    )
    try:
        first = process.stdout.readline()
        match = re.search(r" at (http://127\.0\.0\.1:(\d+)/) \(Ctrl-C to stop\)", first)
        assert match and int(match[2]) > 0, first + process.stderr.read()
        with urllib.request.urlopen(match[1] + "api/run", timeout=30) as response:
            assert json.loads(response.read())["name"] == "serve-mlp"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert out.strip() == "stopped"
    assert err == ""
