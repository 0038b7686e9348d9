"""Config errors name the file, the key and what is allowed, before anything is created."""

from __future__ import annotations

import pytest

from shared.errors import ConfigError
from shared.layers import LAYERS
from shared.naming import Kind, Label
from shared.settings import PLATFORM_FILE, load_platform


def platform_copy(tmp_path, old: str, new: str):
    path = tmp_path / "platform.yaml"
    text = PLATFORM_FILE.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return path


def test_unknown_environment_lists_the_valid_ones():
    with pytest.raises(ConfigError) as error:
        load_platform("staging")
    assert str(error.value) == (
        "platform.yaml: environments: unknown environment 'staging' (allowed: dev, prod)"
    )


@pytest.mark.parametrize("name", ["Dev", "d", "dev_1", "development", "1dev"])
def test_bad_environment_suffix(name, tmp_path):
    path = platform_copy(tmp_path, "  dev:\n", f"  {name}:\n")
    with pytest.raises(ConfigError, match=r"environment name .* is not valid .*2-8 chars"):
        load_platform(name, path)


def test_bad_account_id(tmp_path):
    path = platform_copy(tmp_path, '"111111111111"', '"1111"')
    with pytest.raises(ConfigError) as error:
        load_platform("dev", path)
    assert "environments.dev.accountId: '1111' is not valid (allowed: 12 digits" in str(error.value)


def test_unquoted_account_id_is_refused_with_the_fix(tmp_path):
    path = platform_copy(tmp_path, '"111111111111"', "111111111111")
    with pytest.raises(ConfigError, match=r"accountId: must be a string.*quoted"):
        load_platform("dev", path)


def test_bad_region(tmp_path):
    path = platform_copy(
        tmp_path, "region: us-east-1\n    protect: false", "region: us-east\n    protect: false"
    )
    with pytest.raises(
        ConfigError, match=r"environments.dev.region: 'us-east' is not a region AWS publishes"
    ):
        load_platform("dev", path)


def test_bad_namespace(tmp_path):
    path = platform_copy(tmp_path, "namespace: acme", "namespace: Acme_Corp")
    with pytest.raises(ConfigError, match=r"platform.yaml: namespace: 'Acme_Corp' is not valid"):
        load_platform("dev", path)


def test_malformed_platform_file(tmp_path):
    path = tmp_path / "platform.yaml"
    path.write_text("namespace: [acme\n")
    with pytest.raises(ConfigError, match=r"is not valid YAML at line \d+, column \d+"):
        load_platform("dev", path)


def test_missing_required_config_names_key(replan):
    with pytest.raises(ConfigError) as error:
        replan("foundation", config={"platform-foundation:notificationEmail": ""})
    assert str(error.value).startswith(
        "stacks/foundation/Pulumi.dev.yaml: platform-foundation:notificationEmail: is required"
    )


def test_bad_email(replan):
    with pytest.raises(ConfigError) as error:
        replan("foundation", config={"platform-foundation:notificationEmail": "devops@"})
    assert str(error.value) == (
        "stacks/foundation/Pulumi.dev.yaml: platform-foundation:notificationEmail: 'devops@' is"
        " not an email address (allowed: an email address such as devops@company.com)"
    )


def test_email_is_configurable(replan):
    plan = replan("foundation", config={"platform-foundation:notificationEmail": "ops@acme.io"})
    assert plan.one("aws:sns/topicSubscription:TopicSubscription").inputs["endpoint"] == (
        "ops@acme.io"
    )


def test_integer_out_of_range(replan):
    with pytest.raises(ConfigError, match="keyDeletionWindowDays: 3 is out of range"):
        replan("foundation", config={"platform-foundation:keyDeletionWindowDays": "3"})


def test_name_over_the_service_limit_blames_the_key(replan):
    with pytest.raises(ConfigError) as error:
        replan("registry", config={"platform-registry:repositoryName": "a" * 250})
    message = str(error.value)
    assert message.startswith("stacks/registry/Pulumi.dev.yaml: platform-registry:repositoryName:")
    assert "over the limit of 256" in message


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_of_name_fits_with_the_longest_namespace_and_environment(kind, tmp_path):
    path = platform_copy(tmp_path, "namespace: acme", "namespace: abcdefghijkl")
    path.write_text(path.read_text().replace("  prod:\n", "  production:\n"))
    # 8 chars is the longest environment name allowed.
    path.write_text(path.read_text().replace("  production:\n", "  prodprod:\n"))
    platform = load_platform("prodprod", path)
    for layer in LAYERS:
        name = Label(platform, layer).name(kind, "purpose", scoped_to_account=True)
        assert name.endswith("-prodprod")


def test_name_over_the_limit_is_an_error_not_a_truncation():
    platform = load_platform("dev")
    with pytest.raises(ConfigError, match="over the limit of 64"):
        Label(platform, LAYERS[0]).name(Kind.IAM_ROLE, "x" * 60)


def test_layer_config_file_malformed(config_copy):
    from toolbox.offline import plan_layer

    (config_copy / "stacks" / "foundation" / "Pulumi.dev.yaml").write_text(
        "config:\n  - broken: [\n"
    )
    with pytest.raises(
        ConfigError, match=r"^stacks/foundation/Pulumi.dev.yaml: \(file\): is not valid YAML"
    ):
        plan_layer("foundation", "dev", {})


# -- the readers are pure: load(values, platform, label), no Pulumi program ------------------------


def _values(layer: str, environment: str = "dev", **overrides: str):
    """The layer's values as its files give them, with ``overrides`` (short keys) on top."""
    import dataclasses

    from shared.layers import get
    from shared.stackconfig import file_values

    values = file_values(get(layer), environment)
    project = get(layer).project
    merged = {**values.values, **{f"{project}:{k}": v for k, v in overrides.items()}}
    return dataclasses.replace(values, values=merged)


def _load(layer: str, values, environment: str = "dev"):
    import importlib

    from shared.layers import get

    platform = load_platform(environment)
    reader = importlib.import_module(f"stacks.{layer}.config")
    return reader.load(values, platform, Label(platform, get(layer)))


def test_a_reader_reads_the_values_it_is_given_outside_any_program():
    values = _values(
        "pipeline", buildTimeoutMinutes="45", sourceProvider="s3", sourceKey="drop/{service}.zip"
    )
    args = _load("pipeline", values)
    for service in ("app", "worker"):
        assert args.pipeline(service).build_timeout_minutes == 45
        assert args.pipeline(service).source_provider == "s3"
    # {service} in a value the layer is given: each service's own key.
    assert args.pipeline("app").source.source_key == "drop/app.zip"
    assert args.pipeline("worker").source.source_key == "drop/worker.zip"


def test_a_bad_value_given_to_a_reader_names_the_file_the_key_and_what_is_allowed():
    with pytest.raises(ConfigError) as error:
        _load("pipeline", _values("pipeline", sourceProvider="gitlab"))
    assert str(error.value) == (
        "stacks/pipeline/Pulumi.dev.yaml: platform-pipeline:sourceProvider: 'gitlab' is not one"
        " of the choices (allowed: github, codeconnections, s3)"
    )


def test_a_secret_given_in_plain_text_is_refused_by_the_reader():
    with pytest.raises(ConfigError) as error:
        _load("foundation", _values("foundation", githubToken="ghp_plain"))
    assert str(error.value).startswith(
        "stacks/foundation/Pulumi.dev.yaml: platform-foundation:githubToken: is set in plain text"
    )


def test_the_registry_reads_one_repository_per_service():
    from stacks.registry.config import RepositoryArgs

    args = _load("registry", _values("registry", "prod", keepImages="3"), "prod")
    assert args.repositories == (
        RepositoryArgs("app", "acme-registry-app-prod", keep_images=3, untagged_expiry_days=1),
        RepositoryArgs(
            "worker", "acme-registry-worker-prod", keep_images=3, untagged_expiry_days=1
        ),
    )
    assert args.protect is True


# -- the services in platform.yaml: one line naming platform.yaml and the key -------------------


def with_services(tmp_path, text: str):
    """A copy of the fixture's platform.yaml whose ``services`` block (its last) is ``text``."""
    path = tmp_path / "platform.yaml"
    fixture = PLATFORM_FILE.read_text(encoding="utf-8")
    path.write_text(fixture[: fixture.index("\nservices:\n") + 1] + text, encoding="utf-8")
    return path


def _load_services(layer: str, services: dict, environment: str = "dev"):
    """The layer's reader on the fixture's files, the platform naming ``services`` instead."""
    import dataclasses

    from shared import services as platform_services

    platform = dataclasses.replace(
        load_platform(environment),
        services=platform_services.validate(services, ("dev", "prod"), "platform.yaml")[
            environment
        ],
    )
    reader = __import__(f"stacks.{layer}.config", fromlist=["load"])
    from shared.layers import get

    return reader.load(_values(layer, environment), platform, Label(platform, get(layer)))


def services_error(tmp_path, text: str) -> str:
    path = with_services(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_platform("dev", path)
    message = str(error.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    return message[len(f"{path}: ") :]


ALLOWED_SERVICES = (
    "(allowed: a mapping of service names (a-z 0-9, words joined by single hyphens, at most 20"
    " chars) to their settings, the application first)"
)


def test_services_that_are_not_a_mapping_are_refused(tmp_path):
    assert services_error(tmp_path, "services: [app, worker]\n") == (
        f"services: must be a non-empty mapping, got ['app', 'worker'] {ALLOWED_SERVICES}"
    )


def test_no_services_at_all_is_refused(tmp_path):
    assert services_error(tmp_path, "services: {}\n") == (
        f"services: must be a non-empty mapping, got {{}} {ALLOWED_SERVICES}"
    )


@pytest.mark.parametrize(
    "name", ["Worker", "worker_api", "worker--api", "-worker", "worker-", "9worker"]
)
def test_a_bad_service_name_is_refused(tmp_path, name):
    assert services_error(tmp_path, f"services:\n  app: {{}}\n  {name}: {{}}\n") == (
        f"services: service name '{name}' is not valid {ALLOWED_SERVICES}"
    )


def test_a_service_name_over_20_characters_is_refused(tmp_path):
    fits, over = "a" * 20, "a" * 21
    (tmp_path / "fits").mkdir()
    path = with_services(tmp_path / "fits", f"services:\n  {fits}: {{}}\n")
    assert [s.name for s in load_platform("dev", path).services] == [fits]
    assert services_error(tmp_path, f"services:\n  {over}: {{}}\n") == (
        f"services: service name '{over}' is not valid {ALLOWED_SERVICES}"
    )


def test_an_unknown_setting_of_a_service_names_the_closest(tmp_path):
    message = services_error(tmp_path, "services:\n  app: {}\n  worker:\n    githubrepo: w\n")
    assert message.startswith("services.worker.githubrepo: is not a known setting (allowed: ")
    assert message.endswith("; did you mean services.worker.githubRepo?)")
    # Every layer's settings, whichever layer owns the key.
    assert "repositoryName, keepImages" in message
    assert "ecsService" in message


def test_an_unknown_setting_for_one_environment_names_the_closest(tmp_path):
    text = "services:\n  app:\n    environments:\n      prod:\n        bakeminutes: 5\n"
    message = services_error(tmp_path, text)
    assert message.startswith(
        "services.app.environments.prod.bakeminutes: is not a known setting (allowed: "
    )
    assert message.endswith("; did you mean services.app.environments.prod.bakeMinutes?)")


def test_a_service_for_an_environment_the_platform_does_not_have_is_refused(tmp_path):
    text = "services:\n  app:\n    environments:\n      staging:\n        bakeMinutes: 5\n"
    assert services_error(tmp_path, text) == (
        "services.app.environments.staging: is not an environment (allowed: dev, prod)"
    )


def test_a_setting_of_the_wrong_type_is_blamed_on_the_services_line():
    with pytest.raises(ConfigError) as error:
        _load_services("pipeline", {"app": {}, "worker": {"githubRepo": ["a", "b"]}})
    assert str(error.value) == (
        "platform.yaml: services.worker.githubRepo: must be a string, got ['a', 'b'] (allowed:"
        " a string, as stacks/pipeline/Pulumi.yaml declares githubRepo)"
    )


def test_a_bad_value_of_a_service_is_blamed_on_the_services_line():
    prod = {"environments": {"prod": {"scanSeverityThreshold": "LOUD"}}}
    with pytest.raises(ConfigError) as error:
        _load_services("pipeline", {"app": prod}, "prod")
    assert str(error.value) == (
        "platform.yaml: services.app.environments.prod.scanSeverityThreshold: 'LOUD' is not one"
        " of the choices (allowed: CRITICAL, HIGH, MEDIUM, LOW)"
    )


def test_a_setting_for_one_environment_overrides_the_services_own_there_only(tmp_path):
    path = with_services(
        tmp_path,
        "services:\n  app: {}\n  worker:\n    scanSeverityThreshold: CRITICAL\n"
        "    environments:\n      prod:\n        scanSeverityThreshold: HIGH\n",
    )
    worker = {env: load_platform(env, path).services[1] for env in ("dev", "prod")}
    assert worker["prod"].settings["scanSeverityThreshold"] == "HIGH"
    assert worker["prod"].where["scanSeverityThreshold"] == (
        "services.worker.environments.prod.scanSeverityThreshold"
    )
    assert worker["dev"].settings["scanSeverityThreshold"] == "CRITICAL"
    assert worker["dev"].where["scanSeverityThreshold"] == "services.worker.scanSeverityThreshold"


def test_the_readers_see_each_environments_settings_of_a_service():
    dev, prod = (
        _load("pipeline", _values("pipeline", env), env).pipeline("worker")
        for env in ("dev", "prod")
    )
    assert prod.releases.deploy_alarm_arns == (
        "arn:aws:cloudwatch:us-east-1:222222222222:alarm:worker-5xx",
    )
    assert dev.releases.deploy_alarm_arns == ()
    # The service's own settings, in every environment.
    assert dev.require_approval is prod.require_approval is True
    assert dev.github_repo == prod.github_repo == "worker-service"


def test_the_services_are_in_the_order_platform_yaml_names_them(tmp_path):
    path = with_services(tmp_path, "services:\n  web: {}\n  api: {}\n  batch: {}\n")
    assert [s.name for s in load_platform("dev", path).services] == ["web", "api", "batch"]


def test_without_services_the_platform_has_the_application_alone(tmp_path):
    path = with_services(tmp_path, "")
    assert [s.name for s in load_platform("dev", path).services] == ["app"]


def test_service_placeholders_in_the_layers_defaults_give_each_service_its_own():
    args = _load("pipeline", _values("pipeline"))
    worker, app = args.pipeline("worker"), args.pipeline("app")
    assert (worker.ecs_service, worker.container_name) == ("worker", "worker")
    assert (app.ecs_service, app.container_name) == ("app", "app")
    assert worker.ecs_role_arns == (
        "arn:aws:iam::111111111111:role/worker-task",
        "arn:aws:iam::111111111111:role/worker-task-execution",
    )
    assert app.github_repo == "app"
    assert worker.github_repo == "worker-service"  # stated by the service, used as written


def test_a_stack_file_value_with_the_service_placeholder_gives_each_service_its_own(config_copy):
    stack = config_copy / "stacks" / "pipeline" / "Pulumi.dev.yaml"
    stack.write_text('config:\n  platform-pipeline:githubRepo: "org-{service}"\n')
    platform = config_copy / "platform.yaml"
    text = platform.read_text(encoding="utf-8")
    platform.write_text(text.replace("    githubRepo: worker-service\n", "") + "  billing: {}\n")
    args = _load("pipeline", _values("pipeline"))
    assert [args.pipeline(s).github_repo for s in ("app", "worker", "billing")] == [
        "org-app",
        "org-worker",
        "org-billing",
    ]
