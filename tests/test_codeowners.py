"""CODEOWNERS follows the layer graph: each layer's folder is owned by its team."""

from __future__ import annotations

from shared.layers import LAYERS, REPO_ROOT

CODEOWNERS = REPO_ROOT / ".github" / "CODEOWNERS"
PLATFORM_TEAM_PATHS = ("/shared/", "/tasks.py", "/.github/")


def rules() -> dict[str, list[str]]:
    """Path pattern -> owners, from the file (comments and blank lines dropped)."""
    found: dict[str, list[str]] = {}
    for raw in CODEOWNERS.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            pattern, *owners = line.split()
            found[pattern] = owners
    return found


def github_org() -> str:
    """The GitHub organization of the catch-all owner (a team's own, whatever it is)."""
    return rules()["*"][0].removeprefix("@").split("/")[0]


def test_one_github_organization_owns_everything():
    orgs = {
        owner.removeprefix("@").split("/")[0] for owners in rules().values() for owner in owners
    }
    assert orgs == {github_org()}


def test_every_layer_folder_is_owned_by_its_team():
    org = github_org()
    owned = rules()
    for layer in LAYERS:
        assert owned.get(f"/stacks/{layer.name}/") == [f"@{org}/{layer.owner}"], layer.name


def test_no_stack_folder_outside_the_layer_graph_has_an_owner():
    stack_rules = {pattern for pattern in rules() if pattern.startswith("/stacks/")}
    assert stack_rules == {f"/stacks/{layer.name}/" for layer in LAYERS}


def test_shared_code_tasks_and_workflows_belong_to_the_platform_team():
    owned = rules()
    platform_team = owned["*"]
    assert platform_team == [f"@{github_org()}/platform"]
    for path in PLATFORM_TEAM_PATHS:
        assert owned[path] == platform_team, path
