"""Registries: every component a config can name, looked up by that name.

    LAYERS = Registry("layer")

    @LAYERS.register("dense")
    class Dense(Layer): ...

    LAYERS.build("dense", {"units": 10})   # -> Dense(units=10)

`build` checks the arguments against the constructor's signature, so a config with a typo'd
key or name fails with the valid choices and a "did you mean" instead of a TypeError.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from npnet.errors import ConfigError
from npnet.validate import shown


def did_you_mean(name: Any, choices: list[str]) -> str:
    """`"; did you mean 'x'?"` for the closest choice, or `""` when nothing is close."""
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


class Registry:
    """A name → component table for one kind of component (layer, loss, optimizer, ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator that files a class or function under `name`; duplicate names are a bug."""

        def add(component: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = component
            component.registered_name = name
            return component

        return add

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> Callable[..., Any]:
        """The component registered as `name`; unknown names list the choices."""
        if not isinstance(name, str):
            raise ConfigError(f"{self.kind} name must be a string, got {shown(name)}")
        if name not in self._entries:
            choices = ", ".join(self.names())
            raise ConfigError(
                f"unknown {self.kind} {shown(name)}{did_you_mean(name, self.names())} "
                f"(choices: {choices})"
            )
        return self._entries[name]

    def parameters(self, name: str) -> dict[str, inspect.Parameter]:
        """The keyword arguments a config may give component `name`, in signature order."""
        signature = inspect.signature(self.get(name))
        return {
            p.name: p
            for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
        }

    def build(self, name: str, args: dict[str, Any] | None = None) -> Any:
        """Construct component `name` with `args`, rejecting unknown and missing keys."""
        args = dict(args or {})
        accepted = self.parameters(name)
        for key in args:
            if key not in accepted:
                raise ConfigError(
                    f"unknown key {shown(key)}{did_you_mean(key, list(accepted))} "
                    f"(valid keys for {self.kind} {name!r}: {', '.join(accepted) or 'none'})"
                )
        missing = [k for k, p in accepted.items() if p.default is p.empty and k not in args]
        if missing:
            raise ConfigError(f"missing required key '{missing[0]}' for {self.kind} {name!r}")
        return self.get(name)(**args)


def constructor_config(component: Any) -> dict[str, Any]:
    """The constructor arguments of `component`, read back from attributes of the same names,
    so `type(component)(**constructor_config(component))` rebuilds it (the config round-trip).
    """
    parameters = inspect.signature(type(component).__init__).parameters.values()
    return {
        p.name: getattr(component, p.name)
        for p in parameters
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
    }


LAYERS = Registry("layer")
LOSSES = Registry("loss")
INITIALIZERS = Registry("initializer")
OPTIMIZERS = Registry("optimizer")
SCHEDULES = Registry("schedule")
DATASETS = Registry("dataset")
