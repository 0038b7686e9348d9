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
        "pipeline", buildTimeoutMinutes="45", sourceProvider="s3", sourceKey="drop/app.zip"
    )
    args = _load("pipeline", values)
    assert args.build_timeout_minutes == 45
    assert args.source_provider == "s3"
    assert args.source.source_key == "drop/app.zip"


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


def test_the_registry_keeps_the_image_families_of_the_platform(monkeypatch):
    from tests.platform_support import with_image_families

    with_image_families(monkeypatch, ("shop", "worker"))
    args = _load("registry", _values("registry", keepImages="3"), "prod")
    assert args.keep_images == 3
    assert args.image_families == ("shop", "worker")
