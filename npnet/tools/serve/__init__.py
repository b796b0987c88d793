"""`npnet serve`: a local web page to draw a digit on, answered by a run's network.

    model.py     the served run: decoding an upload, the prediction as JSON, the summary
    app.py       the Starlette application: the page's files and the JSON API
    server.py    the listening socket and uvicorn
    static/      the page: index.html, style.css, app.js (no build step, nothing remote)

Starlette and uvicorn come with the `serve` extra; only `npnet.cli.serve` imports this.
"""
