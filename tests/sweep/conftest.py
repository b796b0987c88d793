"""Fixtures of the sweep tests: a real PostgreSQL server, and small sweep files.

The server is Debian's `postgresql` package (installed here when missing and we are root,
as .ci/run does), started with initdb + pg_ctl on a temporary directory and a free loopback
port. PostgreSQL refuses to run as root, so as root it runs as the `postgres` user, in a
directory that user can reach (pytest's tmp_path is under a mode-700 directory of root's).
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from sweep_checks import TINY_BASE


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def install_postgres() -> str | None:
    """Install Debian's postgresql package if it is missing; the reason if that fails."""
    if postgres_bin() is not None:
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "PostgreSQL is not installed (apt-get install postgresql) and we cannot install it"
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "postgresql"],
    ):
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        if done.returncode != 0:
            return (
                f"could not install PostgreSQL: {' '.join(command)}: {done.stderr.strip()[-300:]}"
            )
    return None if postgres_bin() is not None else "apt-get installed postgresql but no initdb"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """A running PostgreSQL server's URL, to a fresh database `npnet`; stopped at the end."""
    reason = install_postgres()
    if reason is not None:
        pytest.skip(reason)
    bindir = postgres_bin()
    base = Path(tempfile.mkdtemp(dir="/tmp", prefix="npnet-postgres-"))
    base.chmod(0o755)
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", free_port()

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True, cwd=base)

    run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-l",
        str(base / "log"),
        "-w",
        "start",
    )
    try:
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "npnet")
        yield f"postgresql://postgres@127.0.0.1:{port}/npnet"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def sweep_file(tmp_path):
    """Write the tiny base config and a sweep file over it (`body` is YAML after `base:`)."""
    (tmp_path / "tiny.yaml").write_text(TINY_BASE)

    def write(body: str, name: str = "sweep.yaml", heartbeat_seconds: int = 2) -> Path:
        path = tmp_path / name
        header = f"name: tiny-search\nbase: tiny.yaml\nheartbeat_seconds: {heartbeat_seconds}\n"
        path.write_text(header + body)
        return path

    return write
