"""The errors npnet raises for user mistakes.

The library raises these; only the CLI turns them into one red line on stderr and exit code 2.
Anything else that escapes is a bug in npnet and keeps its traceback.
"""


class NpnetError(Exception):
    """A mistake the user can fix: the message says what was expected, what was found and how."""


class ConfigError(NpnetError):
    """A config file, a `--set` override or a component's arguments are invalid."""


class DataError(NpnetError):
    """A dataset cannot be found, read or verified."""


class RunError(NpnetError):
    """A run directory, checkpoint or weights file is missing, corrupt or does not fit the model."""
