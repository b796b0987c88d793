"""Config composition: files that extend files, deep merges, `overrides:` and several files.

A config may start from another, named relative to itself; chains are allowed, cycles are
refused:

    extends: ch44-baseline.yaml     # everything from there, then:
    name: ch44-regularized
    regularization: {l2: 0.001}     # mappings merge key by key: only l2 changes
    overrides:                      # keys by path, the `--set` syntax, applied last
      model.layers[3]: {dropout: {rate: 0.5}}

Mappings merge key by key (a component that changes its `name` is replaced whole); lists
and scalars replace whole (so a layer list is replaced, or changed entry by entry under
`overrides:`, which also replaces a mapping whole). Several files (`npnet train a.yaml b.yaml`) are
laid over each other left to right: a file is laid over its `extends` chain, which is laid
over the files to its left.

Every value set is recorded with the file that set it (`Origins`), so that a validation
error names the file to fix rather than the last one read (`attribute`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from npnet.errors import ConfigError, shown

Steps = tuple[str | int, ...]
# Key path -> the file that set the value there; a path without an entry inherits the
# entry of its longest recorded prefix.
Origins = dict[Steps, str]

KEY_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
EXTENDS, OVERRIDES = "extends", "overrides"
# config.load_config validates under this name, then `attribute` puts the right file in.
PLACEHOLDER = "<composed config>"


def key_path(steps: Sequence[str | int]) -> str:
    """["model", "layers", 0] -> "model.layers[0]"."""
    return "".join(f".{s}" if isinstance(s, str) else f"[{s}]" for s in steps).lstrip(".")


def parse_key(key: str, where: str) -> list[str | int]:
    """ "model.layers[0].dense" -> ["model", "layers", 0, "dense"]; `where` prefixes errors."""
    steps: list[str | int] = [name or int(index) for name, index in KEY_STEP.findall(key)]
    if not key or key_path(steps) != key:
        raise ConfigError(
            f"{where}: {shown(key)} is not a key path like optimizer.lr or model.layers[0]"
        )
    return steps


def set_path(raw: dict[str, Any], steps: list[str | int], value: Any, where: str) -> None:
    """Set `value` at the key path `steps` of `raw`. Missing mappings are created so that
    e.g. `schedule.name=cosine` works on a config without a schedule; a list entry must
    exist. A string on the way becomes `{name: string}` (`optimizer: adam` -> `{name: adam}`)."""
    key = key_path(steps)
    node: Any = raw
    for position, step in enumerate(steps[:-1]):
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                raise ConfigError(f"{where}: '{key_path(steps[: position + 1])}' does not exist")
            node = node[step]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"{where}: '{key_path(steps[:position])}' is not a mapping")
        child = node.get(step)
        if child is None:
            child = node[step] = {}
        elif isinstance(child, str):  # `optimizer: adam` becomes `optimizer: {name: adam}`
            child = node[step] = {"name": child}
        node = child
    last = steps[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ConfigError(f"{where}: {key!r} does not exist")
    elif not isinstance(node, dict):
        raise ConfigError(f"{where}: '{key_path(steps[:-1])}' is not a mapping")
    node[last] = value


def record(origins: Origins, steps: Sequence[str | int], source: str) -> None:
    """`source` set the value at `steps`, replacing whatever was below it."""
    prefix = tuple(steps)
    for path in [p for p in origins if p[: len(prefix)] == prefix]:
        del origins[path]
    origins[prefix] = source


def merge(base: Any, over: Any, source: str, origins: Origins, prefix: Steps = ()) -> Any:
    """`over` laid on `base`: two mappings merge key by key, recursively; anything else in
    `over` (a list, a scalar, a mapping over a non-mapping) replaces. A string under a mapping
    counts as `{name: string}`, as in `--set`; a component that changes its `name` is replaced
    whole, since another component takes other arguments (sgd's momentum means nothing to
    adam). Returns new containers; inputs are untouched."""
    if isinstance(base, str) and isinstance(over, dict) and prefix:
        base = {"name": base}
    renamed = (  # below the top level, where `name` names the run
        bool(prefix)
        and isinstance(base, dict)
        and isinstance(over, dict)
        and over.get("name", base.get("name")) != base.get("name")
    )
    if isinstance(base, dict) and isinstance(over, dict) and not renamed:
        merged = dict(base)
        for key, value in over.items():
            merged[key] = merge(base.get(key), value, source, origins, (*prefix, key))
        if prefix not in origins:
            origins[prefix] = source
        return merged
    record(origins, prefix, source)
    return copy.deepcopy(over)


def compose_files(
    paths: Sequence[Path], read: Callable[[Path], dict[str, Any]]
) -> tuple[dict[str, Any], Origins]:
    """The raw config of `paths` laid over each other left to right, and where each value
    came from. `read(path)` returns one file's raw mapping (config.read_config_file)."""
    raw: dict[str, Any] = {}
    origins: Origins = {}
    for path in paths:
        raw = lay(path, raw, origins, read, ())
    return raw, origins


def lay(
    path: Path,
    base: dict[str, Any],
    origins: Origins,
    read: Callable[[Path], dict[str, Any]],
    chain: tuple[Path, ...],
) -> dict[str, Any]:
    """The file at `path` laid over its `extends` chain laid over `base`, then its
    `overrides:` applied. `chain` holds the files that extend this one (resolved), so that a
    cycle is refused by the file that closes it."""
    source = str(path)
    body = read(path)  # first: it refuses what cannot be read (a symlink loop) in one line
    chain = (*chain, path.resolve())
    parent = body.pop(EXTENDS, None)
    overrides = body.pop(OVERRIDES, None)
    if parent is not None:
        if not isinstance(parent, str) or not parent.strip():
            raise ConfigError(
                f"{source}: extends: expected the path of a config file, got {parent!r}"
            )
        parent_path = path.parent / parent
        if not parent_path.is_file():
            raise ConfigError(
                f"{source}: extends: no such config file {parent!r} (looked for {parent_path})"
            )
        if parent_path.resolve() in chain:
            names = " -> ".join(str(p) for p in (*chain, parent_path.resolve()))
            raise ConfigError(f"{source}: extends: a cycle of configs: {names}")
        base = lay(parent_path, base, origins, read, chain)
    merged = merge(base, body, source, origins)
    if overrides is not None:
        if not isinstance(overrides, dict):
            raise ConfigError(
                f"{source}: overrides: expected a mapping of key paths to values, "
                f"e.g. {{optimizer.lr: 0.01}}, got {overrides!r}"
            )
        for key, value in overrides.items():
            where = f"{source}: overrides: {key!r}"
            steps = parse_key(str(key), where)
            set_path(merged, steps, copy.deepcopy(value), where)
            record(origins, steps, source)
    return merged


def origin_of(steps: Sequence[str | int], origins: Origins) -> str | None:
    """The file that set the value at `steps` (or at its longest recorded prefix)."""
    for length in range(len(steps), 0, -1):
        source = origins.get(tuple(steps[:length]))
        if source is not None:
            return source
    return None


QUOTED_KEY = re.compile(r"(?:unknown key |missing required key )?'([^']+)'")


def attribute(message: str, origins: Origins, fallback: str) -> str:
    """A validation message that starts with PLACEHOLDER, with the file that set the
    offending key in its place (`fallback` when no file set it, e.g. a missing key).

    The key is the message's path ("optimizer: ...") made deeper by the key it quotes
    first ("'lr' must be ..."), so a value set by `overrides:` names that file."""
    if not message.startswith(f"{PLACEHOLDER}: "):
        return message
    rest = message.removeprefix(f"{PLACEHOLDER}: ")
    head, separator, tail = rest.partition(": ")
    steps: list[str | int] = []
    if separator and " " not in head:
        try:
            steps = parse_key(head, "")
        except ConfigError:
            steps, tail = [], rest
    else:
        tail = rest
    quoted = QUOTED_KEY.match(tail)
    if quoted:
        steps = [*steps, quoted.group(1)]
    return f"{origin_of(steps, origins) or fallback}: {rest}"
