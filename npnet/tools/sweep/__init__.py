"""Hyperparameter sweeps on Optuna (the `sweep` extra: `pip install 'npnet[sweep]'`).

    spec.py       the sweep file: base config, search space in --set key paths, validation
    storage.py    the study storage (SQLite by default, PostgreSQL for many machines) and the
                  lock under which workers claim trials
    sweep_dir.py  the sweep directory and its study, created, joined or resumed
    worker.py     one worker process: claims trials, trains each into a run directory,
                  reports every epoch to Optuna's pruner
    launch.py     the worker processes of one `npnet sweep`, each with its share of the cores
    results.py    trials.csv, best.yaml and the rows of the final table

Only the `npnet sweep` and `npnet plot SWEEP_DIR` commands import this package; the trainer
never does.
"""
