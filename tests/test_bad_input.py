"""Bad input ends with one line naming the file or key and what is allowed, before any resource.

Each row of docs/bad-input.md has a test: the rows not covered elsewhere are here, and every row
is run once more through the offline plan to show nothing was registered when it failed.
"""

from __future__ import annotations

import pytest

from shared.errors import ConfigError, PlatformError
from tests.conftest import upstream
from toolbox import offline

UNKNOWN_ENV = "error: platform.yaml: environments: unknown environment"


PIPELINE_ROWS = {
    "missing GitHub owner": ({"platform-pipeline:githubOwner": ""}, "githubOwner: is required"),
    "missing GitHub repo": ({"platform-pipeline:githubRepo": ""}, "githubRepo: is required"),
    "missing GitHub branch": ({"platform-pipeline:githubBranch": ""}, "githubBranch: is required"),
    "unknown source provider": (
        {"platform-pipeline:sourceProvider": "bitbucket"},
        "sourceProvider: 'bitbucket' is not one of the choices (allowed: github,"
        " codeconnections, s3)",
    ),
    "missing connection ARN": (
        {"platform-pipeline:sourceProvider": "codeconnections"},
        "connectionArn: is required (allowed: a connection ARN:",
    ),
    "bad source key": (
        {"platform-pipeline:sourceProvider": "s3", "platform-pipeline:sourceKey": "/app.zip"},
        "sourceKey: '/app.zip' is not valid (allowed: an S3 key ending in .zip",
    ),
    "trigger paths on another source": (
        {"platform-pipeline:triggerPaths": '["src/**"]'},
        "triggerPaths: is only used by the codeconnections source, not github",
    ),
}


@pytest.mark.parametrize("row", sorted(PIPELINE_ROWS))
def test_pipeline_source_config_is_validated_before_any_resource(row, dev, registered):
    config, expected = PIPELINE_ROWS[row]
    upstream_plans = {dev[name].stack: dev[name] for name in ("foundation", "registry")}
    with pytest.raises(ConfigError) as error:
        offline.plan_layer("pipeline", "dev", upstream_plans, config)
    message = str(error.value)
    assert message.startswith("stacks/pipeline/Pulumi.dev.yaml: platform-pipeline:")
    assert expected in message and "\n" not in message
    assert registered == []


CONFIG_ROWS = {
    "invalid email": ("foundation", {"platform-foundation:notificationEmail": "devops@"}),
    "name over the limit": ("registry", {"platform-registry:repositoryName": "a" * 250}),
    "secret in plain config": ("foundation", {"platform-foundation:githubToken": "ghp_x"}),
}


@pytest.mark.parametrize("row", sorted(CONFIG_ROWS))
def test_layer_config_errors_register_nothing(row, dev, registered):
    layer, config = CONFIG_ROWS[row]
    upstream_plans = {dev["foundation"].stack: dev["foundation"]} if layer == "registry" else {}
    with pytest.raises(ConfigError):
        offline.plan_layer(layer, "dev", upstream_plans, config)
    assert registered == []


SERVICE_ROWS = {
    "an unknown setting of a service": (
        "registry",
        {"app": {}, "worker": {"githubrepo": "w"}},
        "platform.yaml: services.worker.githubrepo: is not a known setting",
    ),
    "a setting of a service of the wrong type": (
        "pipeline",
        {"app": {}, "worker": {"githubRepo": ["a", "b"]}},
        "platform.yaml: services.worker.githubRepo: must be a string, got ['a', 'b']",
    ),
    "two services sharing a repository": (
        "registry",
        {"app": {"repositoryName": "shop"}, "worker": {"repositoryName": "shop"}},
        "platform.yaml: services.worker.repositoryName: services app and worker would share",
    ),
}


@pytest.mark.parametrize("row", sorted(SERVICE_ROWS))
def test_services_errors_register_nothing(row, dev, registered, monkeypatch):
    from tests.platform_support import with_services

    layer, services, expected = SERVICE_ROWS[row]
    with_services(monkeypatch, services)
    above = ("foundation", "registry") if layer == "pipeline" else ("foundation",)
    with pytest.raises(ConfigError) as error:
        offline.plan_layer(layer, "dev", {dev[name].stack: dev[name] for name in above})
    assert str(error.value).startswith(expected)
    assert "\n" not in str(error.value)
    assert registered == []


def test_webhook_without_a_token_stops_the_deploy_before_the_pipeline_runs(dev):
    """A foundation deployed before the webhook token existed: the pipeline is not deployed."""
    from tests.test_orchestration import FakeRunner
    from toolbox import orchestration

    runner = FakeRunner(exports={name: dict(plan.exports) for name, plan in dev.items()})
    runner.stacks = {name: dict(dev[name].exports) for name in ("foundation", "registry")}
    del runner.stacks["foundation"]["githubWebhookSecretArn"]

    report = orchestration.deploy(runner, "dev", "pipeline")

    assert runner.ops("up") == []
    assert not report.ok
    assert (
        "does not export 'githubWebhookSecretArn' (ARN of the Secrets Manager secret holding the"
        " GitHub webhook's HMAC token); run `./dev deploy --layer foundation --env dev`"
        in report.failure.detail
    )
    assert "\n" not in report.summary()


def test_webhook_without_a_token_in_the_offline_plan_names_the_export(dev):
    exports = {k: v for k, v in dev["foundation"].exports.items() if k != "githubWebhookSecretArn"}
    upstream_plans = {**upstream("foundation", **exports), dev["registry"].stack: dev["registry"]}
    with pytest.raises(PlatformError) as error:
        offline.plan_layer("pipeline", "dev", upstream_plans)
    assert str(error.value) == (
        "stack organization/platform-foundation/dev does not export 'githubWebhookSecretArn'"
        " (ARN of the Secrets Manager secret holding the GitHub webhook's HMAC token); run"
        " `./dev deploy --layer foundation --env dev`"
    )


def test_upstream_errors_register_only_the_reference(dev, registered):
    with pytest.raises(PlatformError):
        offline.plan_layer("registry", "dev", upstream("foundation", kmsKeyArn=123))
    assert {r.type for r in registered} <= {
        "pulumi:pulumi:StackReference",
        "pulumi:providers:aws",
        "acme:registry:Registry",
    }
    assert not [r for r in registered if r.type.startswith("aws:")]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("synth", "--env", "staging"),
            f"{UNKNOWN_ENV} 'staging' (allowed: dev, prod)",
        ),
        (
            ("synth", "--layer", "network"),
            "error: unknown layer 'network': valid layers are foundation, registry, pipeline",
        ),
        (
            ("deploy", "--env", "qa"),
            f"{UNKNOWN_ENV} 'qa' (allowed: dev, prod)",
        ),
    ],
)
def test_the_cli_says_one_line_and_exits_non_zero(cli, args, expected):
    code, output = cli(*args)
    assert code == 1
    assert output == expected


def test_a_secret_never_reaches_plan_verdicts_summary_or_errors(replan, tmp_path):
    from toolbox.verdicts import evaluate

    marker = "ghp_marker_that_must_never_be_written_anywhere"
    plan = replan("foundation", secrets={"platform-foundation:githubToken": marker})
    assert marker not in plan.to_text()
    assert marker not in evaluate(plan).to_text()
    with pytest.raises(ConfigError) as error:
        replan("foundation", config={"platform-foundation:githubToken": marker})
    assert marker not in str(error.value)
