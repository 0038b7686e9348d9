"""Which xdist worker runs what: the groups of tests/conftest.py stay true to the test files."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import WORKER_GROUPS, worker_group

TESTS = Path(__file__).parent
# The modules through which a test module drives moto (tests/moto_support.py starts mock_aws).
MOTO_MODULES = ("moto", "tests.moto_support", "tests.handler_support")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_every_grouped_module_is_a_test_file_and_in_one_group_only() -> None:
    listed = [module for modules in WORKER_GROUPS.values() for module in modules]
    assert sorted(set(listed)) == sorted(listed), "a module is listed twice"
    missing = [module for module in listed if not (TESTS / f"{module}.py").is_file()]
    assert missing == [], f"listed in WORKER_GROUPS but no such test file: {missing}"


def test_every_test_module_that_drives_moto_runs_in_the_aws_api_group() -> None:
    driving = {
        path.stem
        for path in TESTS.glob("test_*.py")
        if any(name.split(".")[0] == "moto" or name in MOTO_MODULES for name in _imports(path))
    }
    assert "test_verify" in driving and "test_handlers" in driving  # the scan itself works
    outside = sorted(driving - set(WORKER_GROUPS["aws-api"]))
    assert outside == [], f"these modules drive moto: add them to the aws-api group: {outside}"


def test_a_test_is_placed_by_its_module() -> None:
    assert worker_group("tests/test_verify.py::test_x[dev]") == "aws-api"
    assert worker_group("tests/test_policies.py::TestRules::test_y") == "plans"
    assert worker_group("tests/test_cli.py::test_z") is None
