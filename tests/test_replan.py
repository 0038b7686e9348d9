"""The ``replan`` fixture: cached by content, never for a test that patches or passes secrets."""

from __future__ import annotations

import pytest

from tests.conftest import real_upstream
from toolbox import plancache

TOKEN = "platform-foundation:githubToken"


def test_a_replan_without_patches_is_stored_under_its_content_key(dev, replan):
    config = {"platform-registry:keepImages": "25"}
    plan = replan("registry", config=config)
    key = plancache.layer_key("registry", "dev", real_upstream(dev, "foundation"), config)
    assert plancache.load(plancache.CACHE_DIR / f"{key}.json") == plan
    assert replan("registry", config=config) == plan


def test_an_unchanged_replan_is_read_and_a_changed_one_planned(dev, replan, tmp_path):
    planned: list[str] = []
    real = plancache.plan_layer

    def counted(layer, *args):
        planned.append(layer)
        return real(layer, *args)

    # Patched in the body, not with the monkeypatch fixture: the fixture must see an unpatched
    # test, whose plans it reads from the cache (here an empty one of its own).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plancache, "CACHE_DIR", tmp_path)
        patch.setattr(plancache, "plan_layer", counted)
        first = replan("registry", config={"platform-registry:keepImages": "25"})
        again = replan("registry", config={"platform-registry:keepImages": "25"})
        assert planned == ["registry"]
        replan("registry", config={"platform-registry:keepImages": "26"})
    assert again == first
    assert planned == ["registry", "registry"]


def test_a_test_that_watches_the_plan_gets_a_fresh_one(dev, replan, registered):
    # `dev` stored this very key; a plan served from it would register nothing.
    plan = replan("registry")
    assert plan.exports == dev["registry"].exports
    assert {r.urn for r in dev["registry"].resources} <= {r.urn for r in registered}


def test_a_replan_with_secrets_is_planned_and_never_stored(replan, tmp_path):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plancache, "CACHE_DIR", tmp_path)
        plan = replan("foundation", secrets={TOKEN: "ghp_marker"})
    token = [r for r in plan.resources if r.name == "foundation-github-token-value"]
    assert [r.inputs["secretString"] for r in token] == ["[secret]"]
    assert list(tmp_path.iterdir()) == []
