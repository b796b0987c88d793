"""`npnet serve`: a local web page to draw a digit on and watch a run's network answer.

The web framework (Starlette and uvicorn, the `serve` extra) is imported only when the
command runs, so the rest of npnet never needs it.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from npnet.cli.main import RUNS_DIR, RunsDirOption, app, console, errors, user_errors
from npnet.engine.listing import resolve_run_dir

SERVE_EXTRA = ("starlette", "uvicorn")
MISSING_EXTRA = (
    "npnet serve needs the web server: pip install 'npnet[serve]' (make venv installs it)"
)


@app.command()
def serve(
    run: Annotated[str, typer.Argument(help="A run directory (or 'latest') to serve.")],
    host: Annotated[
        str,
        typer.Option(help="Address to listen on; any but loopback lets others in."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8000,
    runs_dir: RunsDirOption = RUNS_DIR,
) -> None:
    """Serve a page to draw a digit on: the run's prediction as you draw, its probabilities,
    the 28×28 image the network saw and (for a CNN) the first convolution's feature maps;
    plus the JSON API behind it (POST /api/predict, GET /api/run). Ctrl-C stops it."""

    try:
        from npnet.tools.serve import server
        from npnet.tools.serve.app import create_app
        from npnet.tools.serve.model import ServedRun
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in SERVE_EXTRA:
            raise
        errors.print(
            f"[bold red]error:[/] {escape(MISSING_EXTRA)}", soft_wrap=True, highlight=False
        )
        raise typer.Exit(code=2) from None

    if not server.is_loopback(host):
        errors.print(
            f"[bold yellow]warning:[/] --host {host}: other machines that can reach it "
            "can use the page and the API (the default, 127.0.0.1, keeps it to this one)",
            soft_wrap=True,
            highlight=False,
        )
    with user_errors():
        run_dir = resolve_run_dir(run, runs_dir)
        sock = server.listen(host, port)  # first: a taken port fails before the run loads
        try:
            web_app = create_app(ServedRun(run_dir))
        except BaseException:
            sock.close()
            raise
    console.print(
        f"serving {run_dir} at {server.bound_url(sock)} (Ctrl-C to stop)",
        highlight=False,
        soft_wrap=True,
    )
    server.run(web_app, sock)
    console.print("stopped", highlight=False)
