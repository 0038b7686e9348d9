"""The ``replan`` fixture: cached by content, never for a test that patches what a plan reads."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import real_upstream
from toolbox import plancache

TESTS = Path(__file__).parent
PATCHERS = {"MonkeyPatch", "patch", "setattr", "setitem", "setenv"}
"""Ways to change in memory what a plan reads, other than the ``monkeypatch`` fixture."""


def test_a_replan_without_patches_is_stored_under_its_content_key(dev, replan):
    config = {"platform-registry:keepImages": "25"}
    plan = replan("registry", config=config)
    key = plancache.layer_key("registry", "dev", real_upstream(dev, "foundation"), config)
    assert plancache.load(plancache.CACHE_DIR / f"{key}.json") == plan
    assert replan("registry", config=config) == plan


def test_a_test_that_watches_the_plan_gets_a_fresh_one(dev, replan, registered):
    # `dev` stored this very key; a plan served from it would register nothing.
    plan = replan("registry")
    assert plan.exports == dev["registry"].exports
    assert {r.urn for r in dev["registry"].resources} <= {r.urn for r in registered}


def test_a_test_that_replans_patches_only_through_the_monkeypatch_fixture():
    """The fixture sees ``monkeypatch`` among a test's fixtures, not a patch made in its body."""
    offenders = []
    for path in sorted(TESTS.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if "replan" not in {arg.arg for arg in node.args.args}:
                continue
            used = {
                inner.attr if isinstance(inner, ast.Attribute) else inner.id
                for inner in ast.walk(node)
                if isinstance(inner, ast.Attribute | ast.Name)
            }
            if "monkeypatch" not in {arg.arg for arg in node.args.args} and (
                used & (PATCHERS | {"monkeypatch"})
            ):
                offenders.append(f"{path.name}::{node.name}")
    assert offenders == []
