"""Argument checks shared by every component, in the form a config error needs.

Each check returns the value (converted where that is lossless) or raises `ConfigError`
saying what was expected and what was received: "'kernel' must be a positive int, got 0".
The config loader adds the file and key path in front.
"""

from __future__ import annotations

import re
import reprlib
from numbers import Integral, Real
from typing import Any

from npnet.errors import ConfigError

# Values in messages are shown abbreviated: a hostile or mistaken value (a huge list, a long
# string) must not make the message itself huge or slow.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxtuple = 3, 8, 6, 8
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 80, 80, 40

NUMBER_LIKE = re.compile(r"\s*[-+]?[0-9.,_]*[0-9][-+0-9.,_eE]*[a-zA-Z%]*\s*")


def shown(value: Any) -> str:
    """repr(value), abbreviated with '...' past a few dozen characters or entries."""
    return _SHORT.repr(value)


def number_hint(value: Any) -> str:
    """Advice for a value that looks like a number but is not one YAML reads as a number."""
    if isinstance(value, str) and NUMBER_LIKE.fullmatch(value):
        try:
            float(value)
        except ValueError:
            return (
                " (write a plain number: digits, an optional '.' and an optional exponent, "
                "e.g. 0.001, 1e-3 or -2.5E+4)"
            )
        return " (a quoted string; write the number without quotes, e.g. 1e-3)"
    return ""


def int_hint(value: Any) -> str:
    """Advice for a whole number written as a float (1e6, 10.0) where an int is needed."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        return f" (an int is written without a '.' or an exponent: {int(value)})"
    return number_hint(value)


def positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value <= 0:
        raise ConfigError(f"'{name}' must be a positive int, got {shown(value)}{int_hint(value)}")
    return int(value)


def non_negative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ConfigError(f"'{name}' must be an int >= 0, got {shown(value)}{int_hint(value)}")
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
        raise ConfigError(f"'{name}' must be a number, got {shown(value)}{number_hint(value)}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if value != value or too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ConfigError(f"'{name}' must be in {left}{lo}, {hi}{right}, got {shown(value)}")
    return value


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"'{name}' must be true or false, got {shown(value)}")
    return value


def one_of(name: str, value: Any, choices: list[str]) -> str:
    if value not in choices:
        from npnet.registry import did_you_mean

        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        raise ConfigError(f"'{name}' must be one of {', '.join(choices)}, got {shown(value)}{hint}")
    return value
