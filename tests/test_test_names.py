"""A test that pytest never collects is a test that silently never runs."""

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _is_fixture(node: ast.FunctionDef) -> bool:
    return any("fixture" in ast.unparse(d) for d in node.decorator_list)


def dead_tests(source: str) -> list[str]:
    """Functions in a test module that pytest will not collect and nothing in the module uses.

    A helper is fine when something calls it; a fixture is fine; anything else (a misspelt test,
    such as ``tset_booking``) would never run.
    """
    tree = ast.parse(source)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    used |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    candidates = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            candidates += [n for n in node.body if isinstance(n, ast.FunctionDef)]
        elif isinstance(node, ast.FunctionDef):
            candidates.append(node)
    return [
        fn.name for fn in candidates
        if not fn.name.startswith("test_") and not _is_fixture(fn) and fn.name not in used
        and not fn.name.startswith("__")
    ]


def test_every_test_function_is_named_test_():
    offenders = [
        f"{path.relative_to(TESTS)}::{name}"
        for path in sorted(TESTS.rglob("test_*.py"))
        for name in dead_tests(path.read_text())
    ]
    assert offenders == [], f"these would never run: {offenders}"


def test_the_guard_catches_a_misnamed_test():
    source = "def _helper():\n    return 1\n\ndef tset_typo():\n    assert _helper() == 2\n"
    assert dead_tests(source) == ["tset_typo"]
