"""``./dev init``: another organisation written into a copy of the repository, which then plans.

The offline plan reads the repository it lives in (``shared.layers.REPO_ROOT`` is where the code
is), so the copy holds the code as well as the config files, and is planned by ``./dev synth``'s
own function in a separate Python process started in the copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.errors import ConfigError
from shared.layers import CONFIG_DIR_VARIABLE, REPO_ROOT
from shared.layers import get as get_layer
from shared.settings import Platform
from shared.stackconfig import LayerFiles, check_stack_file
from tests.conftest import FIXTURE_CONFIG
from toolbox import preflight
from toolbox.init import Choices, InitError, current, init, resolve, set_value
from toolbox.preflight import placeholders_in

OURS = Choices(
    namespace="globex",
    repository="github.com/globex/infrastructure",
    email="platform@globex.example",
    github_owner="globex-corp",
    github_branch="trunk",
    ecs_cluster="shop",
    services=("storefront", "mailer"),
    accounts={"dev": "123456789012", "prod": "210987654321"},
    regions={"dev": "eu-west-1", "prod": "eu-central-1"},
)
CONFIG = [
    "platform.yaml",
    *(f"stacks/{layer}/{name}" for layer in ("foundation", "registry", "pipeline")
      for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml")),
]  # fmt: skip
CODE = ["shared", "stacks", "policies", "toolbox", "pyproject.toml", "uv.lock"]


def _copy(root: Path, names: list[str]) -> None:
    """``names`` from the repository into ``root``, then the configuration the tests own over it
    (``platform.yaml`` and the stack files)."""
    for name in names:
        source, target = REPO_ROOT / name, root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(source, target)
    shutil.copytree(FIXTURE_CONFIG, root, dirs_exist_ok=True)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A copy of the repository's config files (enough for init, not for a plan)."""
    _copy(tmp_path, CONFIG)
    return tmp_path


def _snapshot(root: Path) -> dict[str, bytes]:
    return {name: (root / name).read_bytes() for name in CONFIG}


PLAN = """
import json, sys
from toolbox.synth import synth
out = {}
for env in ("dev", "prod"):
    result = synth(env)
    out[env] = result.violations
print(json.dumps(out))
"""


def test_another_organisation_is_written_and_plans_with_its_values(tmp_path: Path) -> None:
    _copy(tmp_path, [*CODE, "platform.yaml"])
    init(OURS, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop(CONFIG_DIR_VARIABLE)  # the copy's own platform.yaml and stack files
    done = subprocess.run(
        [sys.executable, "-c", PLAN], cwd=tmp_path, env=env, capture_output=True, text=True,
        check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"dev": 0, "prod": 0}

    def plan(environment: str, layer: str) -> dict:
        path = tmp_path / "build" / "plan" / environment / f"{layer}.json"
        return json.loads(path.read_text(encoding="utf-8"))

    def inputs(document: dict, type_: str) -> list[dict]:
        return [r["inputs"] for r in document["resources"] if r["type"] == type_]

    foundation = plan("prod", "foundation")
    buckets = {i["bucket"] for i in inputs(foundation, "aws:s3/bucket:Bucket")}
    assert "globex-foundation-artifacts-210987654321-prod" in buckets
    (provider,) = inputs(foundation, "pulumi:providers:aws")
    assert provider["region"] == "eu-central-1"
    assert json.loads(provider["allowedAccountIds"]) == ["210987654321"]
    (subscription,) = inputs(foundation, "aws:sns/topicSubscription:TopicSubscription")
    assert subscription["endpoint"] == "platform@globex.example"
    (topic,) = inputs(foundation, "aws:sns/topic:Topic")
    assert topic["tags"]["Repository"] == "github.com/globex/infrastructure"

    pipeline = plan("dev", "pipeline")
    pipelines = {p["name"]: p for p in inputs(pipeline, "aws:codepipeline/pipeline:Pipeline")}
    assert sorted(pipelines) == ["mailer-globex-dev", "storefront-globex-dev"]
    storefront, mailer = pipelines["storefront-globex-dev"], pipelines["mailer-globex-dev"]
    text = json.dumps(storefront)
    for value in ("globex-corp", "trunk", "eu-west-1", "123456789012"):
        assert value in text, value
    # Each service's repository and ECS service are named after it.
    for service, codepipeline in (("storefront", storefront), ("mailer", mailer)):
        source, *_, deploy = codepipeline["stages"]
        ecs = deploy["actions"][0]["configuration"]
        assert (ecs["ClusterName"], ecs["ServiceName"]) == ("shop", service)
        assert source["actions"][0]["configuration"]["Repo"] == service
    # Nothing of the sample organisation is left in a name, an ARN or a value (the component
    # type tokens, ``acme:<layer>:<Class>``, are part of the URNs and are not a setting).
    assert "acme-" not in json.dumps(pipeline)
    assert "111111111111" not in json.dumps(pipeline)


def test_what_init_does_not_set_is_kept_comments_included(config: Path) -> None:
    before = (config / "platform.yaml").read_text(encoding="utf-8")
    init(OURS, config)
    after = (config / "platform.yaml").read_text(encoding="utf-8")
    comments = [line for line in before.splitlines() if line.lstrip().startswith("#")]
    assert comments and all(line in after.splitlines() for line in comments)
    assert "# prefix of every physical name" in after.split("namespace: globex", 1)[1]
    for kept in ("project: container-platform", "costCenter: cc-platform-001", "protect: true"):
        assert kept in after
    dev = (config / "stacks/foundation/Pulumi.dev.yaml").read_text(encoding="utf-8")
    assert "platform-foundation:keyDeletionWindowDays: 7" in dev
    assert "platform-foundation:notificationEmail: platform@globex.example" in dev
    prod = (config / "stacks/pipeline/Pulumi.prod.yaml").read_text(encoding="utf-8")
    assert "platform-pipeline:requireApproval: true" in prod
    assert "platform-pipeline:githubOwner: globex-corp" in prod


def test_a_second_run_writes_nothing(config: Path) -> None:
    first = init(OURS, config)
    assert "wrote     platform.yaml" in first
    written = _snapshot(config)
    again = init(OURS, config)
    assert all(line.startswith("unchanged ") for line in again), again
    assert _snapshot(config) == written


def test_a_value_equal_to_the_default_is_not_repeated_in_a_stack_file(config: Path) -> None:
    init(replace(OURS, github_branch="main", ecs_cluster="app"), config)
    dev = (config / "stacks/pipeline/Pulumi.dev.yaml").read_text(encoding="utf-8")
    assert "githubBranch" not in dev and "ecsCluster" not in dev
    assert "platform-pipeline:githubOwner: globex-corp" in dev


def _services(root: Path) -> Any:
    return yaml.safe_load((root / "platform.yaml").read_text(encoding="utf-8"))["services"]


def test_the_services_are_written_in_order_and_a_kept_one_keeps_its_settings(config: Path) -> None:
    # The sample's accounts and Region: the worker's prod alarm is in them.
    sample = {"accounts": {"dev": "111111111111", "prod": "222222222222"}, "regions": {}}
    sample["regions"] = {"dev": "us-east-1", "prod": "us-east-1"}
    init(replace(OURS, services=("worker", "app", "billing"), **sample), config)

    services = _services(config)
    assert list(services) == ["worker", "app", "billing"]
    assert services["worker"]["githubRepo"] == "worker-service"
    assert services["worker"]["environments"]["prod"]["deployAlarmArns"] == [
        "arn:aws:cloudwatch:us-east-1:222222222222:alarm:worker-5xx"
    ]
    assert (services["app"], services["billing"]) == ({}, {})

    init(replace(OURS, **sample), config)  # the sample's services are replaced by the team's
    assert _services(config) == {"storefront": {}, "mailer": {}}
    assert current(config)["services"] == "storefront, mailer"


def test_a_platform_yaml_without_services_gets_the_application(config: Path) -> None:
    platform = config / "platform.yaml"
    text = platform.read_text(encoding="utf-8")
    platform.write_text(text[: text.index("\nservices:")] + "\n", encoding="utf-8")
    assert current(config)["services"] == "app"

    init(replace(OURS, services=("app",)), config)

    assert platform.read_text(encoding="utf-8").endswith("\nservices:\n  app: {}\n")
    assert _services(config) == {"app": {}}


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (
            {"namespace": "Globex"},
            "platform.yaml: namespace: 'Globex' is not valid"
            " (allowed: 2-12 chars, a-z and 0-9, starting with a letter)",
        ),
        (
            {"accounts": {"dev": "12345", "prod": "210987654321"}},
            "platform.yaml: environments.dev.accountId: '12345' is not valid"
            ' (allowed: 12 digits, quoted, e.g. "123456789012")',
        ),
        (
            {"regions": {"dev": "eu-west-1", "prod": "eu-centrl-1"}},
            "platform.yaml: environments.prod.region: 'eu-centrl-1' is not a region AWS publishes",
        ),
        (
            {"email": "platform@"},
            "stacks/foundation/Pulumi.dev.yaml: platform-foundation:notificationEmail:"
            " 'platform@' is not an email address"
            " (allowed: an email address such as devops@company.com)",
        ),
        (
            {"github_owner": "-globex"},
            "stacks/pipeline/Pulumi.dev.yaml: platform-pipeline:githubOwner: '-globex' is not"
            " valid (allowed: a GitHub user or organisation name)",
        ),
        (
            {"services": ("storefront", "Shop_Web")},
            "platform.yaml: services: service name 'Shop_Web' is not valid (allowed: a mapping of"
            " service names (a-z 0-9, words joined by single hyphens, at most 20 chars) to their"
            " settings, the application first)",
        ),
    ],
)
def test_an_invalid_value_is_one_line_and_nothing_is_written(
    config: Path, change: dict, line: str
) -> None:
    before = _snapshot(config)
    with pytest.raises(ConfigError) as caught:
        init(replace(OURS, **change), config)
    assert str(caught.value).startswith(line)
    assert "\n" not in str(caught.value)
    assert _snapshot(config) == before


def test_a_value_missing_without_a_terminal_names_its_flag(config: Path) -> None:
    given = {"namespace": "globex", "repository": "github.com/globex/infrastructure"}
    with pytest.raises(InitError, match=r"^init: --email is missing and there is no terminal"):
        resolve(given, ["dev=123456789012", "prod=210987654321"], ["eu-west-1"], root=config)


def test_an_account_without_its_environment_is_refused(config: Path) -> None:
    flags = {name: "x" for name in ("namespace", "repository", "email")}
    with pytest.raises(InitError, match=r"--account 123456789012: name the environment"):
        resolve(flags, ["123456789012"], root=config)
    with pytest.raises(InitError, match=r"unknown environment 'stage' \(allowed: dev, prod"):
        resolve(flags, ["stage=123456789012"], root=config)


def test_on_a_terminal_each_missing_value_is_asked_and_enter_keeps_it(config: Path) -> None:
    asked: list[tuple[str, str]] = []

    def ask(question: str, now: str) -> str:
        asked.append((question, now))
        return "globex" if question.startswith("Name prefix") else ""

    given = {"repository": "github.com/globex/infrastructure", "email": "a@globex.example"}
    choices = resolve(given, ["prod=210987654321"], ["eu-west-1"], ask=ask, root=config)
    assert choices.namespace == "globex"
    assert choices.github_owner == "acme"  # Enter kept the file's current value
    assert choices.accounts == {"dev": "111111111111", "prod": "210987654321"}
    assert choices.regions == {"dev": "eu-west-1", "prod": "eu-west-1"}
    questions = [question for question, _ in asked]
    assert "AWS account id of dev" in questions and "AWS account id of prod" not in questions
    assert not any(q.startswith("Where this code lives") for q in questions)


def test_current_reads_the_values_a_prompt_offers(config: Path) -> None:
    now = current(config)
    assert now["namespace"] == "acme"
    assert now["email"] == "devops@company.com"  # the declared default, no stack file sets it
    assert now["account:prod"] == "222222222222"


def test_set_value_turns_an_empty_mapping_into_a_block_and_adds_missing_keys() -> None:
    text = "# head\nconfig: {}  # nothing yet\n"
    edited = set_value(text, "f.yaml", ("config", "p:key"), "v")
    assert edited == "# head\nconfig:\n  p:key: v  # nothing yet\n"
    again = set_value(edited, "f.yaml", ("config", "p:other"), "123")
    assert again == '# head\nconfig:\n  p:key: v  # nothing yet\n  p:other: "123"\n'


def test_a_layout_the_editor_cannot_keep_is_an_error_not_a_wrong_file() -> None:
    with pytest.raises(InitError, match=r"f\.yaml: cannot set config\.p:key: write config as a"):
        set_value("config: {a: 1}\n", "f.yaml", ("config", "p:key"), "v")


def test_init_reads_and_writes_the_configuration_where_a_plan_reads_it(config_copy) -> None:
    platform = config_copy / "platform.yaml"
    platform.write_text(
        platform.read_text(encoding="utf-8").replace("namespace: acme ", "namespace: initech "),
        encoding="utf-8",
    )
    assert current()["namespace"] == "initech"
    assert "wrote     platform.yaml" in init(OURS)
    assert "namespace: globex" in platform.read_text(encoding="utf-8")


def test_the_task_without_a_terminal_fails_with_one_line(cli, monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    code, printed = cli("init", "--namespace", "globex")
    assert code == 1
    assert printed == (
        "error: init: --repository is missing and there is no terminal to ask on (CI, or input"
        " is not a terminal): pass it as a flag"
    )


FLAGS = [
    "--namespace", "globex", "--repository", "github.com/globex/infrastructure",
    "--email", "platform@globex.example", "--github-owner", "globex-corp",
    "--github-branch", "trunk", "--ecs-cluster", "shop",
    "--account", "dev=111111111111", "--account", "prod=222222222222", "--region", "us-east-1",
]  # fmt: skip


def test_the_task_takes_one_service_flag_per_service(cli, config_copy, monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    code, printed = cli("init", *FLAGS, "--service", "storefront", "--service", "mailer")
    assert code == 0, printed
    assert "wrote     platform.yaml" in printed
    assert _services(config_copy) == {"storefront": {}, "mailer": {}}


def test_the_task_without_a_service_and_a_terminal_names_the_flag(cli, config_copy, monkeypatch):
    monkeypatch.setenv("CI", "true")
    code, printed = cli("init", *FLAGS)
    assert code == 1
    assert printed == (
        "error: init: --service is missing and there is no terminal to ask on (CI, or input"
        " is not a terminal): pass it as a flag"
    )


# -- the preflight flags what init has not replaced yet ----------------------------------------


def _platform(namespace: str, account: str) -> Platform:
    return Platform(
        namespace=namespace,
        project="container-platform",
        cost_center="cc-1",
        repository="github.com/globex/infrastructure",
        organization="organization",
        environment="dev",
        account_id=account,
        region="eu-west-1",
        protect=False,
    )


def _foundation(config: dict[str, Any]) -> LayerFiles:
    return check_stack_file(
        get_layer("foundation"), "dev", {"config": config}, "stacks/foundation/Pulumi.dev.yaml"
    )


def test_preflight_names_each_sample_value_and_where_it_is_set() -> None:
    found = placeholders_in(_platform("acme", "111111111111"), _foundation({}))
    assert found == [
        "platform.yaml namespace 'acme'",
        "platform.yaml environments.dev.accountId '111111111111'",
        "stacks/foundation/Pulumi.yaml config.notificationEmail.default 'devops@company.com'",
    ]
    in_stack = _foundation({"platform-foundation:notificationEmail": "devops@company.com"})
    assert placeholders_in(_platform("globex", "222222222222"), in_stack) == [
        "platform.yaml environments.dev.accountId '222222222222'",
        "stacks/foundation/Pulumi.dev.yaml platform-foundation:notificationEmail"
        " 'devops@company.com'",
    ]


def test_preflight_finds_nothing_once_init_set_a_teams_values() -> None:
    ours = _foundation({"platform-foundation:notificationEmail": "platform@globex.example"})
    assert placeholders_in(_platform("globex", "123456789012"), ours) == []


def test_the_placeholder_check_is_one_failing_line_of_the_real_preflight() -> None:
    real = preflight.for_environment("dev")
    assert real.placeholders is preflight.check_placeholders
    line = preflight.failed("placeholders", "x")
    session = type("NoCredentials", (), {"get_credentials": lambda self: None})()
    check = preflight.Preflight(
        "dev", session, cli_version=lambda: "0", placeholders=lambda env: line
    )
    report = check.run(("foundation",))
    assert report.results[0] is line
    assert "placeholders" in report.failures
    refresh = check.run(("foundation",), preflight.Purpose.REFRESH)
    assert "placeholders" not in [r.name for r in refresh.results]


def test_an_edit_that_would_read_back_otherwise_writes_nothing(config: Path) -> None:
    platform = config / "platform.yaml"
    text = platform.read_text(encoding="utf-8")
    # prod shares dev's settings through an alias: one span holds both accounts.
    shared = text.split("environments:", 1)[0] + (
        "environments:\n"
        '  dev: &shared\n    accountId: "111111111111"\n    region: us-east-1\n'
        "  prod: *shared\n"
    )
    platform.write_text(shared, encoding="utf-8")
    before = _snapshot(config)
    with pytest.raises(InitError, match=r"^platform\.yaml: the edit would not read back"):
        init(OURS, config)
    assert _snapshot(config) == before
