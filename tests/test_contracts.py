"""Contracts between layers: producers export what consumers read, and drift fails clearly."""

from __future__ import annotations

import pytest

from shared.contracts import CONTRACTS
from shared.errors import UpstreamError
from tests.conftest import real_upstream, upstream
from toolbox.offline import LayerPlan, plan_layer

EXPORTS = {
    "foundation": {
        "kmsKeyArn",
        "kmsKeyAlias",
        "artifactBucketName",
        "artifactBucketArn",
        "githubTokenSecretArn",
        "failureTopicArn",
        "sourceBucketName",
        "sourceBucketArn",
        "githubWebhookSecretArn",
        "ledgerTableName",
        "ledgerTableArn",
    },
    "registry": {"repositoryNames", "repositoryArns", "repositoryUrls"},
    "pipeline": {
        "pipelineNames",
        "pipelineArns",
        "pipelineConsoleUrls",
        "projectNames",
        "roleArns",
        "logGroupNames",
        "githubWebhookUrls",
        "handlerArns",
        "imageUris",
    },
}
"""What each layer exports, written out: what consumers and operators rely on."""


@pytest.mark.parametrize("environment", ["dev", "prod"])
@pytest.mark.parametrize("layer", sorted(EXPORTS))
def test_each_layer_exports_exactly_the_keys_consumers_rely_on(layer, environment, dev, prod):
    plan = {"dev": dev, "prod": prod}[environment][layer]
    assert set(plan.exports) == EXPORTS[layer]


@pytest.mark.parametrize("layer", sorted(EXPORTS))
def test_the_typed_contract_declares_the_same_keys_and_accepts_the_exports(layer, dev):
    contract = CONTRACTS[layer]
    assert set(contract.keys()) == EXPORTS[layer]
    contract.check(dev[layer].exports, dev[layer].stack, "dev")


def test_every_layer_with_exports_has_a_contract(dev):
    exporting = [layer for layer, plan in dev.items() if plan.exports]
    assert sorted(exporting) == sorted(EXPORTS)
    for layer in exporting:
        assert layer in CONTRACTS, f"{layer} exports without a typed contract"


def test_consumer_reading_a_key_the_producer_does_not_export_fails(dev):
    exports = dict(dev["foundation"].exports)
    del exports["kmsKeyArn"]
    with pytest.raises(UpstreamError) as error:
        plan_layer("registry", "dev", upstream("foundation", **exports))
    assert str(error.value) == (
        "stack organization/platform-foundation/dev does not export 'kmsKeyArn' (ARN of the"
        " platform KMS key); run `./dev deploy --layer foundation --env dev`"
    )


def test_upstream_export_of_the_wrong_type_fails(dev):
    exports = {**dev["foundation"].exports, "kmsKeyArn": ["not", "a", "string"]}
    with pytest.raises(UpstreamError, match="exports 'kmsKeyArn' as list, expected str"):
        plan_layer("registry", "dev", upstream("foundation", **exports))


def test_missing_upstream_stack_names_the_stack_and_the_command():
    with pytest.raises(UpstreamError) as error:
        plan_layer("registry", "dev", {})
    assert str(error.value) == (
        "stack organization/platform-foundation/dev does not exist; create it with"
        " `./dev deploy --layer foundation --env dev`"
    )


def test_pipeline_reads_both_upstream_stacks(dev):
    with pytest.raises(UpstreamError, match="platform-registry/dev does not exist"):
        plan_layer("pipeline", "dev", real_upstream(dev, "foundation"))


def test_secret_exports_stay_secret_in_the_consumer(dev):
    producer = dev["foundation"]
    secret_key_arn = {
        producer.stack: LayerPlan(
            layer="foundation",
            environment="dev",
            stack=producer.stack,
            resources=(),
            exports=producer.exports,
            secret_exports=frozenset({"kmsKeyArn"}),
        )
    }
    plan = plan_layer("registry", "dev", secret_key_arn)
    repositories = plan.of_type("aws:ecr/repository:Repository")
    assert len(repositories) == 2
    for repository in repositories:
        assert repository.inputs["encryptionConfigurations"] == [
            {"encryptionType": "KMS", "kmsKey": "[secret]"}
        ]
    assert producer.exports["kmsKeyArn"] not in plan.to_text()


def test_every_export_of_the_registry_and_the_pipeline_is_by_service(dev):
    for layer in ("registry", "pipeline"):
        for key in EXPORTS[layer] - {"projectNames", "roleArns", "logGroupNames", "handlerArns"}:
            assert set(dev[layer].exports[key]) == {"app", "worker"}, (layer, key)
    # The layer's own (the recorder's) under "", beside each service's.
    for key in ("roleArns", "logGroupNames", "handlerArns"):
        assert set(dev["pipeline"].exports[key]) == {"", "app", "worker"}, key
    assert set(dev["pipeline"].exports["projectNames"]) == {"app", "worker"}


def test_a_registry_deployed_before_a_service_was_added_is_one_line_naming_the_fix(dev):
    """The pipeline of a service the registry stack has no repository for yet."""
    exports = {key: {"app": value["app"]} for key, value in dev["registry"].exports.items()}
    registry = {
        dev["registry"].stack: LayerPlan(
            layer="registry",
            environment="dev",
            stack=dev["registry"].stack,
            resources=(),
            exports=exports,
        )
    }
    with pytest.raises(UpstreamError) as error:
        plan_layer("pipeline", "dev", {**real_upstream(dev, "foundation"), **registry})
    assert str(error.value) == (
        "the registry layer has no repository for service 'worker' (it has app); run"
        " `./dev deploy --layer registry` first"
    )
