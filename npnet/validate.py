"""Argument checks shared by every component, in the form a config error needs.

Each check returns the value (converted where that is lossless) or raises `ConfigError`
saying what was expected and what was received: "'kernel' must be a positive int, got 0".
The config loader adds the file and key path in front.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

from npnet.errors import ConfigError
from npnet.registry import did_you_mean


def positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value <= 0:
        raise ConfigError(f"'{name}' must be a positive int, got {value!r}")
    return int(value)


def non_negative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ConfigError(f"'{name}' must be an int >= 0, got {value!r}")
    return int(value)


def number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A real number in [low, high]; `low_open`/`high_open` exclude the bound itself."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(f"'{name}' must be a number, got {value!r}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if value != value or too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ConfigError(f"'{name}' must be in {left}{lo}, {hi}{right}, got {value!r}")
    return value


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"'{name}' must be true or false, got {value!r}")
    return value


def one_of(name: str, value: Any, choices: list[str]) -> str:
    if value not in choices:
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        raise ConfigError(f"'{name}' must be one of {', '.join(choices)}, got {value!r}{hint}")
    return value
