"""The `npnet` command line, the top tier: it parses arguments and delegates; the work lives
in the library below it.

    main.py            the Typer app, the shared options, user mistakes as one red line
    training.py        train, check, eval, runs, plot, list, gradcheck
    chapters.py        the chapters' commands that train nothing (summary, data, ...)
    progress.py        the training progress display (a Callback of the loop)
    tables.py          the tables rich renders; chapter_tables.py those of the chapters
    plots.py           PNG figures (matplotlib, the `plot` extra)
    predict.py         predict (your own images) and export (ONNX, the `export` extra)
    sweep.py           sweep: hyperparameter search on Optuna (the `sweep` extra)
    sweep_plots.py     a sweep's figures, for `plot SWEEP_DIR`
    serve.py           the web page to draw digits on (npnet.tools.serve, the `serve` extra)
"""

from npnet.cli import chapters, predict, serve, sweep, training
from npnet.cli.main import app

__all__ = ["app", "chapters", "predict", "serve", "sweep", "training"]
