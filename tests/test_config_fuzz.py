"""Property-based: whatever YAML a user writes, the loader answers with a valid config or a
clean ConfigError, never another exception."""

import contextlib
import copy
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npnet.config import Config, apply_override, config_from_dict, parse_yaml
from npnet.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
VALID = [yaml.safe_load(p.read_text()) for p in sorted(CONFIGS.glob("*.yaml"))]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["relu", "dense", "conv2d", "mnist", "sgd", "adam", "units", "lr", "name"]),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), children, max_size=4),
    ),
    max_leaves=20,
)


def load_or_config_error(raw):
    try:
        result = config_from_dict(raw, "fuzz.yaml")
    except ConfigError as error:
        assert str(error).startswith("fuzz.yaml")
        assert "\n" not in str(error)
        return None
    assert isinstance(result, Config)
    return result


def paths(node, prefix=()):
    """Every (path, value) inside a nested dict/list document."""
    yield prefix, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, (*prefix, index))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_random_documents(raw):
    if isinstance(raw, dict):
        load_or_config_error(raw)
    else:
        with contextlib.suppress(ConfigError):
            parse_yaml(yaml.safe_dump(raw), "fuzz.yaml")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.data())
def test_mutated_valid_configs(valid, data):
    raw = copy.deepcopy(valid)
    for _ in range(data.draw(st.integers(1, 3))):
        targets = [p for p, _ in paths(raw) if p]
        path = data.draw(st.sampled_from(targets))
        parent = raw
        for step in path[:-1]:
            parent = parent[step]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = data.draw(documents)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.text(max_size=8))] = data.draw(documents)
    load_or_config_error(raw)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text(text):
    try:
        raw = parse_yaml(text, "fuzz.yaml")
    except ConfigError:
        return
    load_or_config_error(raw)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VALID), st.text(max_size=40))
def test_random_overrides(valid, override):
    raw = copy.deepcopy(valid)
    try:
        apply_override(raw, override, "fuzz.yaml")
    except ConfigError:
        return
    load_or_config_error(raw)
