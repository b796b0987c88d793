"""Learning-rate schedules: hand-computed lrs, plateau logic, resuming, argument checks."""

from __future__ import annotations

import json
import math
import re

import pytest

from npnet.errors import ConfigError
from npnet.optim import schedules  # noqa: F401  (registers the schedules)
from npnet.registry import SCHEDULES

C = math.cos(math.pi / 4)


def lrs(name: str, args: dict, base_lr: float, epochs: int, metrics=None) -> list[float]:
    """The lr of epochs 0..epochs: begin(), then one step() per finished epoch."""
    schedule = SCHEDULES.build(name, args)
    metrics = metrics or [None] * epochs
    return [schedule.begin(base_lr)] + [schedule.step(m) for m in metrics]


@pytest.mark.parametrize(
    ("name", "args", "base_lr", "expected"),
    [
        ("constant", {}, 0.3, [0.3, 0.3, 0.3, 0.3]),
        ("step", {"step_size": 2, "gamma": 0.5}, 0.8, [0.8, 0.8, 0.4, 0.4, 0.2]),
        ("multistep", {"milestones": [1, 3], "gamma": 0.5}, 1.0, [1.0, 0.5, 0.5, 0.25, 0.25]),
        ("exponential", {"gamma": 0.5}, 1.0, [1.0, 0.5, 0.25, 0.125]),
        ("cosine", {"t_max": 4}, 1.0, [1.0, (1 + C) / 2, 0.5, (1 - C) / 2, 0.0, (1 - C) / 2]),
        ("cosine", {"t_max": 2, "eta_min": 0.2}, 1.0, [1.0, 0.6, 0.2, 0.6, 1.0]),
        # warmup 0.5 → 0.75, then a 4-epoch cosine from epoch 2
        ("cosine", {"t_max": 6, "warmup_epochs": 2, "warmup_start_factor": 0.5}, 1.0,
         [0.5, 0.75, 1.0, (1 + C) / 2, 0.5, (1 - C) / 2, 0.0]),
    ],
)  # fmt: skip
def test_closed_form_schedules_by_hand(name, args, base_lr, expected):
    assert lrs(name, args, base_lr, len(expected) - 1) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize(
    ("args", "metrics", "expected"),
    [
        # patience 1: the second epoch without improvement cuts the lr
        ({"patience": 1, "factor": 0.5}, [1, 1, 1, 0.5, 0.5, 0.5], [1, 1, 0.5, 0.5, 0.5, 0.25]),
        # cooldown 1: the epoch after a cut does not count as bad
        ({"patience": 0, "factor": 0.5, "cooldown": 1}, [1, 1, 1, 1, 1], [1, 0.5, 0.5, 0.25, 0.25]),
        # min_lr floors the cut; at the floor nothing changes
        ({"patience": 0, "factor": 0.1, "min_lr": 0.05}, [1, 1, 1, 1], [1, 0.1, 0.05, 0.05]),
        # 0.99995 is not a 1e-4 relative improvement on 1, so it is a bad epoch
        ({"patience": 0, "factor": 0.5}, [1, 0.99995], [1, 0.5]),
        ({"patience": 0, "factor": 0.5, "threshold_mode": "abs", "threshold": 0.1},
         [1, 0.95, 0.85], [1, 0.5, 0.5]),
        ({"mode": "max", "patience": 0, "factor": 0.5}, [0.5, 0.6, 0.6], [1, 1, 0.5]),
    ],
)  # fmt: skip
def test_reduce_on_plateau_by_hand(args, metrics, expected):
    assert lrs("reduce_on_plateau", args, 1.0, len(metrics), metrics)[1:] == expected


def test_reduce_on_plateau_needs_a_metric():
    schedule = SCHEDULES.build("reduce_on_plateau", {})
    schedule.begin(0.1)
    with pytest.raises(ConfigError, match="needs a validation loss"):
        schedule.step()
    assert lrs("step", {"step_size": 1}, 1.0, 1) == [1.0, 0.1]  # the others ignore it


def test_step_before_begin_is_a_bug():
    with pytest.raises(RuntimeError, match="before begin"):
        SCHEDULES.build("exponential", {"gamma": 0.5}).step()


def test_begin_restarts_the_schedule():
    schedule = SCHEDULES.build("reduce_on_plateau", {"patience": 0})
    schedule.begin(1.0)
    schedule.step(1.0)
    assert schedule.step(1.0) == pytest.approx(0.1)
    assert schedule.begin(2.0) == 2.0
    assert schedule.step(5.0) == 2.0  # the old best (1.0) is forgotten, so 5.0 improves


# Every schedule with a case that exercises its state, and metrics with plateaus.
RESUME_ARGS = {
    "constant": {},
    "step": {"step_size": 3, "gamma": 0.5},
    "multistep": {"milestones": [2, 9], "gamma": 0.5},
    "exponential": {"gamma": 0.9},
    "cosine": {"t_max": 12, "eta_min": 0.001, "warmup_epochs": 3},
    "reduce_on_plateau": {"patience": 1, "cooldown": 1, "factor": 0.5},
}
METRICS = [1.0, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.7, 0.7, 0.7, 0.7]


def test_every_registered_schedule_is_covered():
    assert set(RESUME_ARGS) == set(SCHEDULES.names())


@pytest.mark.parametrize("name", sorted(RESUME_ARGS))
def test_resume_from_json_state_continues_exactly(name):
    straight = lrs(name, RESUME_ARGS[name], 0.1, len(METRICS), METRICS)

    first = SCHEDULES.build(name, RESUME_ARGS[name])
    resumed = [first.begin(0.1)] + [first.step(m) for m in METRICS[:5]]
    # Strict JSON (no Infinity/NaN): the checkpoint writer may store it as-is.
    state = json.loads(json.dumps(first.state_dict(), allow_nan=False))
    config = json.loads(json.dumps(first.get_config()))
    second = SCHEDULES.build(name, config)
    second.load_state_dict(state)
    resumed += [second.step(m) for m in METRICS[5:]]

    assert resumed == straight
    assert second.name == name


def test_plateau_state_survives_json_before_any_metric():
    schedule = SCHEDULES.build("reduce_on_plateau", {"patience": 0})
    schedule.begin(1.0)
    state = json.loads(json.dumps(schedule.state_dict(), allow_nan=False))
    assert state["best"] is None
    fresh = SCHEDULES.build("reduce_on_plateau", {"patience": 0})
    fresh.load_state_dict(state)
    assert fresh.step(100.0) == 1.0  # anything beats "no best yet"
    assert fresh.step(100.0) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("step", {"step_size": 0}, "'step_size' must be a positive int, got 0"),
        ("step", {"step_size": 2.5}, "'step_size' must be a positive int, got 2.5"),
        ("step", {"step_size": 2, "gamma": 0}, "'gamma' must be in (0, 1], got 0.0"),
        ("exponential", {"gamma": 1.5}, "'gamma' must be in (0, 1], got 1.5"),
        ("multistep", {"milestones": []}, "'milestones' must be a non-empty list of epochs"),
        ("multistep", {"milestones": 5}, "'milestones' must be a non-empty list of epochs, got 5"),
        ("multistep", {"milestones": [3, 0]}, "'milestones[1]' must be a positive int, got 0"),
        ("multistep", {"milestones": [3, 2]}, "'milestones' must be strictly increasing"),
        ("multistep", {"milestones": [2, 2]}, "'milestones' must be strictly increasing"),
        ("cosine", {"t_max": 0}, "'t_max' must be a positive int, got 0"),
        ("cosine", {"t_max": 5, "eta_min": -1}, "'eta_min' must be in [0, inf], got -1.0"),
        ("cosine", {"t_max": 5, "warmup_epochs": 5},
         "'warmup_epochs' must be less than 't_max' (5), got 5"),
        ("cosine", {"t_max": 5, "warmup_epochs": -1}, "'warmup_epochs' must be an int >= 0"),
        ("cosine", {"t_max": 5, "warmup_start_factor": 0},
         "'warmup_start_factor' must be in (0, 1], got 0.0"),
        ("reduce_on_plateau", {"mode": "minimum"},
         "'mode' must be one of min, max, got 'minimum'; did you mean 'min'?"),
        ("reduce_on_plateau", {"factor": 1.0}, "'factor' must be in (0, 1), got 1.0"),
        ("reduce_on_plateau", {"patience": -1}, "'patience' must be an int >= 0, got -1"),
        ("reduce_on_plateau", {"threshold_mode": "relative"}, "'threshold_mode' must be one of"),
        ("reduce_on_plateau", {"min_lr": -0.1}, "'min_lr' must be in [0, inf], got -0.1"),
        ("cosine", {}, "missing required key 't_max' for schedule 'cosine'"),
    ],
)  # fmt: skip
def test_invalid_arguments_name_the_key(name, args, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        SCHEDULES.build(name, args)


@pytest.mark.parametrize("name", sorted(RESUME_ARGS))
def test_config_round_trip(name):
    schedule = SCHEDULES.build(name, RESUME_ARGS[name])
    assert SCHEDULES.build(name, schedule.get_config()).get_config() == schedule.get_config()
