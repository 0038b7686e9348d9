"""Which xdist worker runs what: the groups of tests/conftest.py stay true to the test files."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from xdist.scheduler import WorkStealingScheduling

from tests.conftest import WORKER_GROUPS, pytest_xdist_make_scheduler, worker_group

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


class Options:
    """The few options xdist's schedulers and the scheduler hook read (a stand-in for a Config)."""

    def __init__(self, dist: str, workers: int) -> None:
        self.values = {"dist": dist, "numprocesses": workers, "tx": [f"{workers}*popen"]}

    def getoption(self, name: str) -> object:
        return self.values[name]

    getvalue = getoption


def test_on_two_workers_a_unit_of_work_is_a_group_or_a_single_test() -> None:
    scheduler = pytest_xdist_make_scheduler(Options("loadgroup", 2), None)
    split = scheduler._split_scope
    assert split("tests/test_verify.py::test_a[kms]") == "aws-api"
    assert split("tests/test_handlers.py::test_b") == "aws-api"
    assert split("tests/test_policies.py::test_c") == "plans"
    assert split("tests/test_cli.py::test_d") == "tests/test_cli.py::test_d"


def test_on_more_workers_than_groups_work_is_stolen() -> None:
    assert isinstance(
        pytest_xdist_make_scheduler(Options("loadgroup", 3), None), WorkStealingScheduling
    )


@pytest.mark.parametrize("dist", ["load", "worksteal", "loadfile"])
def test_another_dist_is_left_to_xdist(dist: str) -> None:
    assert pytest_xdist_make_scheduler(Options(dist, 2), None) is None
