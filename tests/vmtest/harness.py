"""Runs the VM test script's definitions as the NixOS test driver runs the script, without VMs.

Usage: python3 harness.py DRIVER SCENARIO_JSON < code

The script (DRIVER, checks/vm-test.py) is executed with `exec` in a namespace holding what the
test driver and vm-test.nix put there: `start_all`, `subtest`, a stand-in machine per node of
the scenario (named as the driver names its machine globals), OPENSSL and SCENARIO_JSON (the
data file's text). Its last statement, `main()`, is left out: no step runs. Then `code` runs in
the same namespace, with `harness_read_keys()` (the string keys the script's source reads) and
`harness_declared_keys()` (the keys its TypedDicts declare).
"""

import ast
import contextlib
import re
import sys
from typing import Any, Iterator, get_type_hints, is_typeddict


class Machine:
    """A stand-in for a test driver machine: nothing may run on it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, method: str) -> Any:
        raise AssertionError(f"{self.name}.{method} called: no VM runs here")


def driver_global(node: str) -> str:
    """The name the NixOS test driver gives a machine's global: characters a Python name cannot
    hold become `_`, and so does a leading digit."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", node)
    return "_" + name[1:] if name[:1].isdigit() else name


@contextlib.contextmanager
def subtest(name: str) -> Iterator[None]:
    yield


def start_all() -> None:
    raise AssertionError("start_all called: no VM runs here")


def definitions(source: str) -> ast.Module:
    module = ast.parse(source, "vm-test.py")
    last = module.body[-1]
    is_main = (
        isinstance(last, ast.Expr)
        and isinstance(last.value, ast.Call)
        and isinstance(last.value.func, ast.Name)
        and last.value.func.id == "main"
        and not last.value.args
    )
    assert is_main, "the script's last statement is not main()"
    module.body = module.body[:-1]
    return module


def read_keys(source: str) -> set[str]:
    """Every string constant the source looks up: `value["key"]` and `value.get("key", ...)`
    (`Literal["tag"]` is a type, not a lookup)."""
    keys: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        literal = isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "Literal"
        if isinstance(node, ast.Subscript) and not literal and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            keys.add(node.slice.value)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            keys.add(node.args[0].value)
    return keys


def declared_keys(namespace: dict[str, Any]) -> set[str]:
    return {key for value in list(namespace.values()) if is_typeddict(value) for key in get_type_hints(value)}


def main() -> None:
    driver, data = sys.argv[1], sys.argv[2]
    with open(driver) as file:
        source = file.read()
    with open(data) as file:
        scenario_json = file.read()
    import json

    nodes = json.loads(scenario_json)["nodes"]
    namespace: dict[str, Any] = {"start_all": start_all, "subtest": subtest, "OPENSSL": "openssl", "SCENARIO_JSON": scenario_json}
    namespace.update({driver_global(node): Machine(node) for node in nodes})
    # As the test driver runs its testScript: exec with the symbols as globals, no module.
    exec(compile(definitions(source), "<string>", "exec"), namespace, None)
    namespace["harness_read_keys"] = lambda: read_keys(source)
    namespace["harness_declared_keys"] = lambda: declared_keys(namespace)
    exec(compile(sys.stdin.read(), "<harness>", "exec"), namespace, None)


if __name__ == "__main__":
    main()
