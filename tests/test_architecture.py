"""The shape of the code: imports point down the tiers, no import circle, no module too long.

Every import of every npnet module is read with `ast` (function-local ones and those under
`if TYPE_CHECKING:` included), so a circle cannot hide inside a function. The tiers, bottom up:

    0  base         errors < registry < validate < compose < config   (in this order)
    1  functional   the pure math
    2  nn, optim, data   side by side on functional: none of the three imports another
    3  engine       the experiment, the loop, checkpoints, run directories
    4  tools        gradcheck, the chapters' explanations
    5  cli          the Typer app and everything it draws

A module may import its own tier's modules (within a package) and anything below, never above.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "npnet"
MAX_LINES = 400

# (tier, rank inside the tier): an import must go to a lower tier, or to the same tier and a
# rank no higher (the same package, or a base module below it).
BASE = [
    "errors",
    "files",
    "registry",
    "validate",
    "compose",
    "config_yaml",
    "config_schema",
    "config",
]
TIERS = {
    **{f"npnet.{name}": (0, rank) for rank, name in enumerate(BASE)},
    "npnet.functional": (1, 0),
    "npnet.nn": (2, 0),
    "npnet.optim": (2, 0),
    "npnet.data": (2, 0),
    "npnet.engine": (3, 0),
    "npnet.tools": (4, 0),
    "npnet.cli": (5, 0),
}
ENTRY_POINTS = {"npnet", "npnet.__main__"}  # the package itself: above every tier
# Any module may read `npnet.__version__`: the package's __init__ has run before any of its
# modules does, and `from npnet import nn` still counts as an import of npnet.nn.
ROOT_PACKAGE = "npnet"
# Modules that need an optional extra (onnx, optuna, starlette): the CLI command that uses one
# imports it inside the command, so every other command runs without the extra installed.
OPTIONAL_MODULES = ("npnet.tools.export", "npnet.tools.sweep", "npnet.tools.serve")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def tier_of(module: str) -> tuple[str, tuple[int, int]]:
    """The tier prefix `module` belongs to and its (tier, rank)."""
    for prefix, tier in TIERS.items():
        if module == prefix or module.startswith(prefix + "."):
            return prefix, tier
    raise AssertionError(f"{module} belongs to no tier: add it to TIERS in {__file__}")


def resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module name of a `from ... import` (relative ones included)."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def npnet_imports(module: str) -> list[tuple[str, int, bool]]:
    """(imported npnet module, line, inside a function?) for every import in `module`.

    `from npnet.nn import activations` imports the module npnet.nn.activations;
    `from npnet.nn.layer import Layer` imports npnet.nn.layer."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    local_lines = {
        inner.lineno
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        for inner in ast.walk(node)
        if isinstance(inner, (ast.Import, ast.ImportFrom))
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = resolve(module, path.name == "__init__.py", node)
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target == "npnet" or target.startswith("npnet."):
                found.append((target, node.lineno, node.lineno in local_lines))
    return found


GRAPH = {module: npnet_imports(module) for module in MODULES}


def describe(module: str, line: int) -> str:
    return f"{MODULES[module].relative_to(PACKAGE.parent)}:{line}"


def test_every_module_belongs_to_a_tier():
    for module in MODULES:
        if module not in ENTRY_POINTS:
            tier_of(module)


def test_imports_point_down_the_tiers():
    upward = []
    for module, imports in GRAPH.items():
        if module in ENTRY_POINTS:
            continue
        own_prefix, own = tier_of(module)
        for target, line, _ in imports:
            if target == ROOT_PACKAGE:
                continue
            assert target not in ENTRY_POINTS, f"{describe(module, line)} imports {target}"
            prefix, tier = tier_of(target)
            if tier[0] > own[0] or (tier == own and prefix != own_prefix and tier[0] != 0):
                # above, or beside: nn, optim and data do not import one another
                upward.append(f"{describe(module, line)}: {module} imports {target}")
            elif tier[0] == own[0] == 0 and tier[1] > own[1]:
                upward.append(f"{describe(module, line)}: {module} imports {target}")
    assert not upward, "imports against the tiers:\n" + "\n".join(upward)


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A list of modules forming an import circle, or None (depth-first search)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in graph.get(node, []):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in graph:
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_circle():
    graph = {module: [t for t, _, _ in imports if t != module] for module, imports in GRAPH.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_circle():
    """Negative control: a circle through three modules is found, a chain is not."""
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None


def test_the_tier_check_sees_an_upward_import():
    """Negative control: the rule the walk applies rejects engine -> cli and nn -> optim."""
    assert tier_of("npnet.engine.loop")[1] < tier_of("npnet.cli.main")[1]
    assert tier_of("npnet.nn.dense")[1] == tier_of("npnet.optim.clip")[1]
    assert tier_of("npnet.nn.dense")[0] != tier_of("npnet.optim.clip")[0]


def optional(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in OPTIONAL_MODULES)


def test_npnet_is_imported_at_the_top_of_modules_only():
    """Function-local imports hide circles; only optional extras (matplotlib) and slow
    third-party imports may wait inside a function, and of npnet's modules only those that
    need an optional extra, inside the CLI command that uses them."""
    local = [
        f"{describe(module, line)}: {target}"
        for module, imports in GRAPH.items()
        for target, line, inside_function in imports
        if inside_function and not (module.startswith("npnet.cli.") and optional(target))
    ]
    assert not local, "function-local npnet imports:\n" + "\n".join(local)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_too_long(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[module]}: {lines} lines; split it by concern"
