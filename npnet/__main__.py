"""`python -m npnet ...` is the `npnet` command."""

from npnet.cli import app

app(prog_name="npnet")
