"""The engine, the tier above the math: what turns a config into a trained run directory.

    experiment.py      Experiment and the builders (data, network, loss, optimizer, schedule)
    state.py           TrainingState, Best: what a checkpoint saves
    loop.py            fit, resume, the epochs and one training step
    callbacks.py       the hooks the loop calls (the CLI's progress display is one)
    checkpoint.py      checkpoint.npz: save and restore a TrainingState
    early_stopping.py  stop when a validation metric stops improving
    runs.py            run directories: their files, written atomically, and read back
    listing.py         the runs directory as a whole: latest, npnet runs, runs compare
    metrics.py         accuracy, evaluation over a dataset, the per-class report
    evaluate.py        rebuild a finished run from its directory and evaluate it

Imports point down only: the engine uses `nn`, `optim`, `data`, `functional` and the base
modules (`config`, `registry`, `errors`), never the tools or the CLI.
"""
