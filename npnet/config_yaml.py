"""The YAML reader of configs and `--set` values: PyYAML's safe loader, made strict and bounded.

- Numbers as YAML 1.2 reads them: `1e-3`, `1E+6` and `-2.5e-4` are floats (YAML 1.1, which
  PyYAML follows, wants a dot: `1.0e-3`), so a learning rate can be written as everyone does.
- A key given twice in one mapping is refused, naming the key and both lines (YAML 1.1
  silently keeps the last one).
- Nesting deeper than `MAX_DEPTH` and documents whose aliases expand to more than
  `MAX_NODES` nodes ("billion laughs") are refused before anything is constructed; a
  recursive alias is refused too. Tags stay refused, as with `yaml.safe_load`.

Every refusal is a `ConfigError` starting with the source and the line.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from npnet.errors import ConfigError

MAX_DEPTH = 64
MAX_NODES = 100_000

FLOAT_TAG = "tag:yaml.org,2002:float"
# YAML 1.2's core-schema float: digits with an optional fraction and an optional exponent.
FLOAT_12 = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")


class ConfigLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 floats, no duplicate keys, and bounded nesting and size."""

    source = "<config>"

    def __init__(self, stream: str, source: str) -> None:
        super().__init__(stream)
        self.source = source
        self.depth = 0

    def refuse(self, mark: Any, problem: str) -> ConfigError:
        where = f"line {mark.line + 1}: " if mark is not None else ""
        return ConfigError(f"{self.source}: {where}{problem}")

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise self.refuse(
                    self.peek_event().start_mark, f"nested deeper than {MAX_DEPTH} levels"
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None:
            expanded_size(node, self)
        return node

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    continue
                key = self.construct_object(key_node)
                line = key_node.start_mark.line + 1
                if key in first_line:
                    raise self.refuse(
                        key_node.start_mark,
                        f"duplicate key {shown_key(key)} (first given at line "
                        f"{first_line[key]}); keep one of them",
                    )
                first_line[key] = line
        return super().construct_mapping(node, deep)


# Copy the resolver table, so adding the YAML 1.2 float leaves yaml.SafeLoader untouched.
ConfigLoader.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# Appended after the int resolver, so `10` stays an int and only `1e-3` and kin become floats.
ConfigLoader.add_implicit_resolver(FLOAT_TAG, FLOAT_12, list("-+0123456789."))


def shown_key(key: Any) -> str:
    text = repr(key)
    return text if len(text) <= 60 else text[:57] + "..."


def expanded_size(root: Any, loader: ConfigLoader) -> int:
    """The number of nodes `root` stands for once every alias is expanded, counted with each
    shared node's size computed once; over MAX_NODES, or a node inside itself, is refused."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(node: Any) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in in_progress:
            raise loader.refuse(node.start_mark, "an alias refers to a node that contains it")
        in_progress.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        in_progress.discard(key)
        if total > MAX_NODES:
            raise loader.refuse(
                node.start_mark,
                f"the aliases expand to more than {MAX_NODES:,} values; a config is far smaller",
            )
        sizes[key] = total
        return total

    return size(root)


def load_yaml(text: str, source: str) -> Any:
    """The document in `text` as plain data; ConfigError for invalid or refused YAML."""
    try:
        # The reader checks the characters as it is made: inside the try too.
        loader = ConfigLoader(text, source)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{source}: invalid YAML: {where}{problem}") from None
