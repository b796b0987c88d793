"""Listening on a host and port, and running the application there with uvicorn."""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import socket

import uvicorn
from starlette.applications import Starlette

from npnet.errors import ConfigError


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) and listening; port 0 picks a free one. Binding here,
    before uvicorn starts, turns a taken port or an unknown host into one clear error."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as error:
        raise ConfigError(f"--host {host}: not an address of this machine ({error})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as error:
        sock.close()
        raise ConfigError(
            f"--host {host} --port {port}: cannot listen there ({error.strerror}); "
            "is another server using the port? Try another --port"
        ) from None
    return sock


def bound_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def run(app: Starlette, sock: socket.socket) -> None:
    """Serve `app` on `sock` until Ctrl-C or SIGTERM, then return. Only warnings are logged:
    a page that predicts while you draw would fill the terminal with access-log lines."""
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    # uvicorn shuts down gracefully on either signal, then raises it again with the handler
    # it found: SIGTERM then interrupts like Ctrl-C, instead of killing the process.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])
