"""Shared fixtures. Tests never download: NPNET_NO_DOWNLOAD is set for the whole session."""

import os
from pathlib import Path

import pytest

os.environ["NPNET_NO_DOWNLOAD"] = "1"


@pytest.fixture
def write_config(tmp_path):
    """Write a YAML text to tmp_path/name and return its path."""

    def write(text: str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
