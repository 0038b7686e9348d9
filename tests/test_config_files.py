"""Nothing the operator writes is ignored: every key is read or is an error naming its file.

Stack files are checked against their layer's ``Pulumi.yaml`` declarations, platform.yaml against
its schema (every environment, whichever one runs), any YAML file for keys written twice, regions
against botocore's published list and tags against AWS's rules. Each error is one line naming the
file and the key, raised before the offline plan registers anything.
"""

from __future__ import annotations

import ast
import re
import shutil

import pytest

from shared import layers as layer_module
from shared import settings
from shared.errors import ConfigError, PlatformError
from shared.layers import REPO_ROOT, get
from shared.settings import PLATFORM_FILE, load_platform, parse_yaml
from shared.stackconfig import load_layer_files
from shared.tagging import tag_problem
from tests.conftest import FIXTURE_CONFIG
from toolbox import offline


@pytest.fixture
def stacks(tmp_path, monkeypatch):
    """A copy of ``stacks/`` with the tests' stack files in it, the code and config root of the
    run, that the test may edit; file names in errors stay repository-relative."""
    root = tmp_path / "repo"
    # Not the bytecode: the programs run from the copy by runpy, which reads sources only.
    shutil.copytree(
        layer_module.STACKS_DIR, root / "stacks", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(FIXTURE_CONFIG, root, dirs_exist_ok=True)
    monkeypatch.setattr(layer_module, "STACKS_DIR", root / "stacks")
    monkeypatch.setattr(layer_module, "CONFIG_ROOT", root)
    monkeypatch.setattr(settings, "PLATFORM_FILE", root / "platform.yaml")
    monkeypatch.setattr(settings, "REPO_ROOT", root)
    return root / "stacks"


def edit(path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def plan_fails(layer: str, registered, environment: str = "dev") -> str:
    """Plan ``layer`` (its upstream stubbed); the one-line error; nothing registered."""
    with pytest.raises(PlatformError) as error:
        offline.plan_layer(layer, environment, {})
    assert registered == []
    message = str(error.value)
    assert "\n" not in message
    return message


# -- stack files against the declarations ---------------------------------------------------


def test_a_misspelt_key_names_the_file_the_key_and_the_closest_declared_key(stacks, registered):
    edit(
        stacks / "pipeline" / "Pulumi.prod.yaml",
        "platform-pipeline:requireApproval: true",
        "platform-pipeline:requireAproval: true",
    )
    assert plan_fails("pipeline", registered, "prod") == (
        "stacks/pipeline/Pulumi.prod.yaml: platform-pipeline:requireAproval: is not declared in"
        " stacks/pipeline/Pulumi.yaml, so nothing would read it (allowed: a key"
        " stacks/pipeline/Pulumi.yaml declares; the closest is platform-pipeline:requireApproval)"
    )


def test_another_layers_key_says_where_it_belongs(stacks, registered):
    edit(
        stacks / "pipeline" / "Pulumi.dev.yaml",
        "config: {}",
        "config:\n  platform-foundation:notificationEmail: ops@acme.io",
    )
    assert plan_fails("pipeline", registered) == (
        "stacks/pipeline/Pulumi.dev.yaml: platform-foundation:notificationEmail: is the foundation"
        " layer's setting; set it in stacks/foundation/Pulumi.dev.yaml (allowed: a key"
        " stacks/pipeline/Pulumi.yaml declares)"
    )


def test_a_provider_key_the_program_never_reads_is_an_error(stacks, registered):
    edit(
        stacks / "foundation" / "Pulumi.dev.yaml", "config:\n", "config:\n  aws:region: eu-west-1\n"
    )
    assert plan_fails("foundation", registered) == (
        "stacks/foundation/Pulumi.dev.yaml: aws:region: is aws provider config, which this layer"
        " never reads (its AWS provider takes the account and region from platform.yaml)"
        " (allowed: a key stacks/foundation/Pulumi.yaml declares)"
    )


def test_a_key_without_namespace_is_an_error(stacks, registered):
    edit(stacks / "registry" / "Pulumi.dev.yaml", "config: {}", "config:\n  keepImages: 5")
    message = plan_fails("registry", registered)
    assert message.startswith("stacks/registry/Pulumi.dev.yaml: keepImages: has no namespace")
    assert "'platform-registry:keepImages'" in message


def test_pulumis_own_stack_file_keys_are_allowed(stacks):
    edit(
        stacks / "foundation" / "Pulumi.dev.yaml",
        "config:\n",
        "secretsprovider: passphrase\nencryptionsalt: v1:c2FsdA==:v1:aXY=:Y2lwaGVy\n"
        "encryptedkey: ZGF0YWtleQ==\nconfig:\n",
    )
    files = load_layer_files(get("foundation"), "dev")
    assert files.values == {
        "platform-foundation:keyDeletionWindowDays": 7,
        "platform-foundation:secretRecoveryWindowDays": 0,
    }


def test_a_setting_at_the_top_of_a_stack_file_is_an_error(stacks, registered):
    edit(
        stacks / "pipeline" / "Pulumi.prod.yaml",
        "config:\n  platform-pipeline:requireApproval: true",
        "platform-pipeline:requireApproval: true\nconfig: {}",
    )
    assert plan_fails("pipeline", registered, "prod") == (
        "stacks/pipeline/Pulumi.prod.yaml: platform-pipeline:requireApproval: is not a known"
        " setting (allowed: config, secretsprovider, encryptedkey, encryptionsalt)"
    )


def test_a_value_of_the_wrong_type_names_the_declared_type(stacks, registered):
    edit(
        stacks / "pipeline" / "Pulumi.prod.yaml",
        "requireApproval: true",
        "requireApproval: [yes]",
    )
    assert plan_fails("pipeline", registered, "prod") == (
        "stacks/pipeline/Pulumi.prod.yaml: platform-pipeline:requireApproval: must be a boolean,"
        " got [True] (allowed: a boolean, as stacks/pipeline/Pulumi.yaml declares)"
    )


def test_values_as_pulumi_config_set_writes_them_are_accepted(stacks):
    edit(
        stacks / "foundation" / "Pulumi.dev.yaml",
        "keyDeletionWindowDays: 7",
        'keyDeletionWindowDays: "7"',
    )
    edit(
        stacks / "pipeline" / "Pulumi.prod.yaml", "requireApproval: true", 'requireApproval: "true"'
    )
    assert load_layer_files(get("foundation"), "dev").values[
        "platform-foundation:keyDeletionWindowDays"
    ] == ("7")
    assert load_layer_files(get("pipeline"), "prod").values == {
        "platform-pipeline:requireApproval": "true"
    }


def test_a_declared_secret_in_plain_text_is_refused_from_the_file(stacks, registered):
    edit(
        stacks / "foundation" / "Pulumi.dev.yaml",
        "config:\n",
        "config:\n  platform-foundation:githubToken: ghp_plain\n",
    )
    message = plan_fails("foundation", registered)
    assert message.startswith(
        "stacks/foundation/Pulumi.dev.yaml: platform-foundation:githubToken: is set in plain text"
    )
    assert "ghp_plain" not in message


def test_a_secret_given_as_a_pulumi_secret_is_accepted(stacks):
    edit(
        stacks / "foundation" / "Pulumi.dev.yaml",
        "config:\n",
        "config:\n  platform-foundation:githubToken:\n    secure: v1:AAAA\n",
    )
    files = load_layer_files(get("foundation"), "dev")
    assert files.values["platform-foundation:githubToken"] == {"secure": "v1:AAAA"}


def test_an_override_of_an_undeclared_key_is_refused(replan):
    with pytest.raises(ConfigError) as error:
        replan("foundation", config={"platform-foundation:notifcationEmail": "ops@acme.io"})
    assert str(error.value).endswith(
        "is not declared in stacks/foundation/Pulumi.yaml, so nothing would read it (allowed: a key"
        " stacks/foundation/Pulumi.yaml declares; the closest is"
        " platform-foundation:notificationEmail)"
    )


# -- Pulumi.yaml: its own mistakes name it --------------------------------------------------


def test_a_bad_default_names_pulumi_yaml_not_the_stack_file(stacks, registered):
    edit(stacks / "foundation" / "Pulumi.yaml", "default: devops@company.com", "default: devops@")
    assert plan_fails("foundation", registered) == (
        "stacks/foundation/Pulumi.yaml: config.notificationEmail.default: 'devops@' is not an"
        " email address (allowed: an email address such as devops@company.com)"
    )


def test_the_same_bad_value_in_the_stack_file_names_the_stack_file(stacks, registered):
    edit(
        stacks / "foundation" / "Pulumi.dev.yaml",
        "config:\n",
        "config:\n  platform-foundation:notificationEmail: devops@company.com\n",
    )
    edit(stacks / "foundation" / "Pulumi.yaml", "default: devops@company.com", "default: devops@")
    edit(stacks / "foundation" / "Pulumi.dev.yaml", "Email: devops@company.com", "Email: ops@")
    assert plan_fails("foundation", registered).startswith(
        "stacks/foundation/Pulumi.dev.yaml: platform-foundation:notificationEmail: 'ops@'"
    )


def test_a_bad_default_out_of_range_names_pulumi_yaml(stacks, registered):
    edit(stacks / "registry" / "Pulumi.yaml", "default: 10", "default: 0")
    assert plan_fails("registry", registered).startswith(
        "stacks/registry/Pulumi.yaml: config.keepImages.default: 0 is out of range"
    )


def test_a_default_of_the_wrong_type_names_pulumi_yaml(stacks, registered):
    edit(stacks / "foundation" / "Pulumi.yaml", "default: 30\n", "default: thirty\n")
    assert plan_fails("foundation", registered) == (
        "stacks/foundation/Pulumi.yaml: config.artifactExpiryDays.default: must be an integer,"
        " got 'thirty' (allowed: an integer)"
    )


def test_a_misspelt_declaration_attribute_is_an_error(stacks, registered):
    edit(stacks / "registry" / "Pulumi.yaml", "    default: 10\n", "    defualt: 10\n")
    assert plan_fails("registry", registered) == (
        "stacks/registry/Pulumi.yaml: config.keepImages.defualt: is not a known setting (allowed:"
        " type, description, default, items, secret; did you mean config.keepImages.default?)"
    )


def test_a_secret_with_a_default_is_an_error(stacks, registered):
    edit(
        stacks / "foundation" / "Pulumi.yaml",
        "    secret: true\n",
        "    secret: true\n    default: x\n",
    )
    assert plan_fails("foundation", registered).startswith(
        "stacks/foundation/Pulumi.yaml: config.githubToken.default: is a default for a secret"
    )


def test_a_key_the_program_reads_must_be_declared(stacks, registered):
    text = (stacks / "foundation" / "Pulumi.yaml").read_text(encoding="utf-8")
    start = text.index("  githubToken:\n")
    end = text.index("  notificationEmail:\n")
    (stacks / "foundation" / "Pulumi.yaml").write_text(text[:start] + text[end:], encoding="utf-8")
    assert plan_fails("foundation", registered) == (
        "stacks/foundation/Pulumi.yaml: config.githubToken: the program reads it but it is not"
        " declared; declare it under config: with its type, default and description"
    )


def test_another_namespace_declared_in_pulumi_yaml_is_an_error(stacks, registered):
    edit(
        stacks / "registry" / "Pulumi.yaml",
        "config:\n",
        "config:\n  aws:region:\n    type: string\n    default: eu-west-1\n",
    )
    assert plan_fails("registry", registered).startswith(
        "stacks/registry/Pulumi.yaml: config.aws:region: declares a key of the aws namespace"
    )


def test_a_typo_in_another_environments_stack_file_fails_every_run(stacks):
    edit(
        stacks / "pipeline" / "Pulumi.prod.yaml",
        "platform-pipeline:requireApproval",
        "platform-pipeline:requireApprovals",
    )
    with pytest.raises(ConfigError, match=r"^stacks/pipeline/Pulumi.prod.yaml: .*requireApprovals"):
        offline.plan_all("dev", "foundation")


# -- keys written twice ----------------------------------------------------------------------


def test_a_key_written_twice_in_a_stack_file_is_an_error(stacks, registered):
    edit(
        stacks / "foundation" / "Pulumi.dev.yaml",
        "  platform-foundation:secretRecoveryWindowDays: 0\n",
        "  platform-foundation:secretRecoveryWindowDays: 0\n"
        "  platform-foundation:keyDeletionWindowDays: 30\n",
    )
    assert plan_fails("foundation", registered) == (
        "stacks/foundation/Pulumi.dev.yaml: platform-foundation:keyDeletionWindowDays: is written"
        " twice (lines 3 and 5); YAML would silently keep only the last (allowed: each key once"
        " per mapping)"
    )


def test_a_key_written_twice_in_pulumi_yaml_is_an_error(stacks, registered):
    edit(
        stacks / "registry" / "Pulumi.yaml",
        "    default: 10\n",
        "    default: 10\n    default: 5\n",
    )
    assert plan_fails("registry", registered).startswith(
        "stacks/registry/Pulumi.yaml: default: is written twice"
    )


def test_a_key_written_twice_in_a_buildspec_is_an_error(tmp_path, monkeypatch):
    from stacks.pipeline import codebuild

    (tmp_path / "unit-tests.yml").write_text(
        "version: 0.2\nphases:\n  build:\n    commands: [a]\n  build:\n    commands: [b]\n"
    )
    monkeypatch.setattr(codebuild, "BUILDSPEC_DIR", tmp_path)
    codebuild.buildspec.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"unit-tests.yml: build: is written twice \(lines 3"):
            codebuild.buildspec("unit-tests.yml")
    finally:
        codebuild.buildspec.cache_clear()


def test_merge_keys_may_still_be_overridden():
    data = parse_yaml("base: &b {a: 1, b: 2}\nuse:\n  <<: *b\n  b: 3\n", "x.yaml")
    assert data["use"] == {"a": 1, "b": 3}


def test_nothing_reads_yaml_around_the_duplicate_check():
    """Every YAML read in the platform's code goes through shared.settings.parse_yaml."""
    offenders = []
    for folder in ("shared", "toolbox", "stacks", "policies", "bench"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if "yaml" not in text:
                continue  # no name `yaml` in it, so none of the reads looked for below
            tree = ast.parse(text)
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "yaml"
                    and node.attr in {"safe_load", "load", "full_load", "unsafe_load", "load_all"}
                    and path.name != "settings.py"
                ):
                    offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert offenders == []


# -- platform.yaml ---------------------------------------------------------------------------


def platform_copy(tmp_path, old: str, new: str):
    path = tmp_path / "platform.yaml"
    text = PLATFORM_FILE.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_an_unknown_top_level_key_names_the_closest(tmp_path):
    path = platform_copy(tmp_path, "costCenter: cc-platform-001", "costCenter: cc-1\ncostcenter: x")
    with pytest.raises(ConfigError) as error:
        load_platform("dev", path)
    assert str(error.value).endswith(
        "platform.yaml: costcenter: is not a known setting (allowed: namespace, project,"
        " costCenter, repository, stackOrganization, services, environments;"
        " did you mean costCenter?)"
    )


def test_an_unknown_key_of_another_environment_fails_this_one(tmp_path):
    path = platform_copy(tmp_path, "    protect: true", "    protect: true\n    regoin: eu-west-1")
    with pytest.raises(ConfigError) as error:
        load_platform("dev", path)
    assert str(error.value).endswith(
        "platform.yaml: environments.prod.regoin: is not a known setting (allowed: accountId,"
        " region, protect; did you mean environments.prod.region?)"
    )


def test_a_bad_value_in_another_environment_fails_this_one(tmp_path):
    path = platform_copy(tmp_path, '"222222222222"', '"2222"')
    with pytest.raises(ConfigError, match=r"environments.prod.accountId: '2222' is not valid"):
        load_platform("dev", path)


def test_a_key_written_twice_in_platform_yaml_is_an_error(tmp_path):
    path = platform_copy(
        tmp_path, "    protect: false", "    protect: false\n    region: us-west-2"
    )
    with pytest.raises(ConfigError) as error:
        load_platform("dev", path)
    assert str(error.value).endswith(
        "platform.yaml: region: is written twice (lines 18 and 20); YAML would silently keep only"
        " the last (allowed: each key once per mapping)"
    )


@pytest.mark.parametrize("region", ["us-east-7", "us-esat-1", "eu-west-9"])
def test_a_region_aws_does_not_publish_is_an_error(region, tmp_path):
    path = platform_copy(tmp_path, "region: us-east-1", f"region: {region}")
    with pytest.raises(ConfigError) as error:
        load_platform("dev", path)
    message = str(error.value)
    assert f"platform.yaml: environments.dev.region: '{region}' is not a region AWS publishes" in (
        message
    )
    assert "(allowed: one of the" in message and "regions of the aws partition" in message


def test_a_region_of_another_partition_is_an_error(tmp_path):
    path = platform_copy(tmp_path, "region: us-east-1", "region: us-gov-west-1")
    with pytest.raises(ConfigError, match="'us-gov-west-1' is in the aws-us-gov partition"):
        load_platform("dev", path)


@pytest.mark.parametrize("region", ["eu-west-1", "ap-southeast-2", "ca-central-1"])
def test_published_regions_are_accepted(region, tmp_path):
    path = platform_copy(tmp_path, "region: us-east-1", f"region: {region}")
    assert load_platform("dev", path).region == region


def test_the_region_list_comes_from_botocore():
    regions = settings.aws_regions()
    assert regions["us-east-1"] == "aws"
    assert regions["cn-north-1"] == "aws-cn"
    assert "us-east-7" not in regions


# -- tags ------------------------------------------------------------------------------------


def test_a_300_character_tag_value_names_the_key(tmp_path):
    path = platform_copy(tmp_path, "project: container-platform", "project: " + "p" * 300)
    with pytest.raises(ConfigError) as error:
        load_platform("dev", path)
    assert str(error.value).endswith(
        "platform.yaml: project: the tag value for Project is 300 chars, over the limit of 256"
        " (allowed: letters, digits, spaces and _ . : / = + - @; key 1-128 chars, value up to 256)"
    )


def test_a_256_character_tag_value_is_accepted(tmp_path):
    path = platform_copy(tmp_path, "costCenter: cc-platform-001", "costCenter: " + "c" * 256)
    assert load_platform("dev", path).cost_center == "c" * 256


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("aws:platform", "starts with aws:, which AWS reserves"),
        ("AWS:platform", "starts with aws:, which AWS reserves"),
        ("github.com/acme/platform#main", "has characters AWS does not accept: '#'"),
    ],
)
def test_tag_values_aws_refuses_are_errors(value, problem, tmp_path):
    path = platform_copy(
        tmp_path, "repository: github.com/acme/container-platform", f'repository: "{value}"'
    )
    with pytest.raises(ConfigError, match=f"platform.yaml: repository: the tag value '{value}'"):
        load_platform("dev", path)
    with pytest.raises(ConfigError) as error:
        load_platform("dev", path)
    assert problem in str(error.value)


def test_tag_rules():
    assert tag_problem("Team", "équipe plateforme: a/b=c+d-e@f_g.h") is None
    assert tag_problem("k" * 128, "v") is None
    assert tag_problem("k" * 129, "v") == (
        "the tag key '" + "k" * 129 + "' is 129 chars",
        "letters, digits, spaces and _ . : / = + - @; key 1-128 chars, value up to 256",
    )
    assert (
        tag_problem("aws:team", "x")[0]
        == "the tag key 'aws:team' starts with aws:, which AWS reserves"
    )
    assert tag_problem("Team", "a\tb")[0].startswith("the tag value 'a\tb' has characters")


def test_every_test_the_bad_input_table_names_exists():
    """docs/bad-input.md's last column names tests (``file.py::name``, then bare names)."""
    table = (REPO_ROOT / "docs" / "bad-input.md").read_text(encoding="utf-8")
    missing, named = [], 0
    for row in table.splitlines():
        if not row.startswith("| ") or row.startswith("| bad input") or row.startswith("|---"):
            continue
        current = None
        for token in re.findall(r"`([\w.]+\.py::\w+|test_\w+)`", row.rsplit("|", 2)[-2]):
            name = token
            if "::" in token:
                current, name = token.split("::")
            source = (REPO_ROOT / "tests" / str(current)).read_text(encoding="utf-8")
            named += 1
            if f"def {name}(" not in source:
                missing.append(f"{current}::{name}")
    assert named > 40
    assert missing == []
