"""The errors npnet raises for user mistakes.

The library raises these; only the CLI turns them into one red line on stderr and exit code 2.
Anything else that escapes is a bug in npnet and keeps its traceback.
"""

import reprlib
from typing import Any

# Values in messages are shown abbreviated: a hostile or mistaken value (a huge list, a long
# string) must not make the message itself huge or slow.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxtuple = 3, 8, 6, 8
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 80, 80, 40


def shown(value: Any) -> str:
    """repr(value), abbreviated with '...' past a few dozen characters or entries: how every
    message shows a value the user gave."""
    return _SHORT.repr(value)


class NpnetError(Exception):
    """A mistake the user can fix: the message says what was expected, what was found and how."""


class ConfigError(NpnetError):
    """A config file, a `--set` override or a component's arguments are invalid."""


class DataError(NpnetError):
    """A dataset cannot be found, read or verified."""


class RunError(NpnetError):
    """A run directory, checkpoint or weights file is missing, corrupt or does not fit the model."""
