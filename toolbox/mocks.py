"""The offline plan's stand-in for the provider: what AWS (and GitHub) would answer.

:class:`PlatformMocks` gives each resource the ID and outputs the real provider returns (ARNs,
URLs, IDs for the configured region and account, deterministic per type and name), answers a
StackReference with what the upstream layer exported in the same run, and answers only the
invokes the layers really make: anything else is an error, not a silent ``{}``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

from pulumi.runtime import mocks, rpc

from shared.contracts import create_command
from shared.errors import PlatformError, UpstreamError
from shared.layers import LAYERS
from shared.settings import Platform

SECRET_SIG = rpc._special_sig_key
STACK_REFERENCE_TYPE = "pulumi:pulumi:StackReference"


class Exported(Protocol):
    """What a StackReference reads of an upstream layer's plan."""

    @property
    def exports(self) -> Mapping[str, Any]: ...

    @property
    def secret_exports(self) -> frozenset[str]: ...


def _unwrap(value: Any) -> Any:
    """``value`` with secrets unwrapped, as a provider would see it."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == rpc._special_secret_sig:
            return _unwrap(value.get("value"))
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def _digest(*parts: str, length: int = 32) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:length]


class PlatformMocks(mocks.Mocks):
    """Realistic, deterministic answers for the resources and invokes the layers use."""

    def __init__(self, platform: Platform, stack_outputs: Mapping[str, Exported]) -> None:
        self.platform = platform
        self.stack_outputs = stack_outputs
        """Plans of the layers already run, by stack name, for StackReferences."""
        self.invoked: set[str] = set()
        """The tokens of the invokes answered so far."""

    def _arn(
        self, service: str, resource: str, *, regional: bool = True, with_account: bool = True
    ) -> str:
        region = self.platform.region if regional else ""
        account = self.platform.account_id if with_account else ""
        return f"arn:aws:{service}:{region}:{account}:{resource}"

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.typ == STACK_REFERENCE_TYPE:
            return self._stack_reference(args)
        inputs = _unwrap(args.inputs)
        state = dict(inputs)
        seed = _digest(args.typ, args.name)
        name = inputs.get("name") or f"{args.name}-{seed[:7]}"
        uid = str(uuid.UUID(seed))
        resource_id, outputs = self._outputs(args.typ, name, uid, seed, inputs)
        state.update(outputs)
        state.setdefault("arn", self._arn(args.typ.split(":")[1].split("/")[0], f"{name}"))
        if "tags" in inputs:
            state["tagsAll"] = inputs["tags"]
        return resource_id, state

    def _outputs(  # noqa: PLR0912 - one branch per resource type, flat by design
        self,
        typ: str,
        name: str,
        uid: str,
        seed: str,
        inputs: dict[str, Any],
    ) -> tuple[str, dict[str, Any]]:
        account, region = self.platform.account_id, self.platform.region
        match typ:
            case "pulumi:providers:aws":
                return uid, {}
            case "aws:kms/key:Key":
                return uid, {"keyId": uid, "arn": self._arn("kms", f"key/{uid}")}
            case "aws:kms/alias:Alias":
                return name, {
                    "arn": self._arn("kms", name),
                    "targetKeyArn": self._arn("kms", f"key/{inputs.get('targetKeyId')}"),
                }
            case "aws:s3/bucket:Bucket":
                bucket = inputs.get("bucket") or name
                return bucket, {
                    "bucket": bucket,
                    "arn": f"arn:aws:s3:::{bucket}",
                    "bucketDomainName": f"{bucket}.s3.amazonaws.com",
                    "bucketRegionalDomainName": f"{bucket}.s3.{region}.amazonaws.com",
                    "region": region,
                }
            case "aws:secretsmanager/secret:Secret":
                arn = self._arn("secretsmanager", f"secret:{name}-{seed[:6]}")
                return arn, {"arn": arn}
            case "aws:sns/topic:Topic":
                arn = self._arn("sns", name)
                return arn, {"arn": arn}
            case "aws:ecr/repository:Repository":
                return name, {
                    "arn": self._arn("ecr", f"repository/{name}"),
                    "registryId": account,
                    "repositoryUrl": f"{account}.dkr.ecr.{region}.amazonaws.com/{name}",
                }
            case "aws:iam/role:Role":
                path = inputs.get("path", "/")
                return name, {
                    "arn": f"arn:aws:iam::{account}:role{path}{name}",
                    "uniqueId": "AROA" + seed[:17].upper(),
                }
            case "aws:iam/policy:Policy":
                arn = f"arn:aws:iam::{account}:policy/{name}"
                return arn, {"arn": arn, "policyId": "ANPA" + seed[:17].upper()}
            case "aws:cloudwatch/logGroup:LogGroup":
                return name, {"arn": self._arn("logs", f"log-group:{name}")}
            case "aws:codebuild/project:Project":
                arn = self._arn("codebuild", f"project/{name}")
                return arn, {"arn": arn}
            case "aws:codebuild/reportGroup:ReportGroup":
                arn = self._arn("codebuild", f"report-group/{name}")
                return arn, {"arn": arn}
            case "aws:codepipeline/pipeline:Pipeline":
                return name, {"arn": self._arn("codepipeline", name)}
            case "aws:sqs/queue:Queue":
                url = f"https://sqs.{region}.amazonaws.com/{account}/{name}"
                return url, {"arn": self._arn("sqs", name), "url": url}
            case "aws:cloudwatch/metricAlarm:MetricAlarm":
                return name, {"arn": self._arn("cloudwatch", f"alarm:{name}")}
            case "aws:cloudwatch/eventRule:EventRule":
                return name, {"arn": self._arn("events", f"rule/{name}")}
            case "aws:codepipeline/webhook:Webhook":
                # CodePipeline answers PutWebhook with a regional trigger URL and the webhook ARN.
                return self._arn("codepipeline", f"webhook:{name}"), {
                    "arn": self._arn("codepipeline", f"webhook:{name}"),
                    "url": f"https://{region}.webhooks.aws/trigger?t={seed}&v=1",
                }
            case "github:index/repositoryWebhook:RepositoryWebhook":
                return str(int(seed[:8], 16)), {"url": "", "etag": seed[:16]}
            case "aws:dynamodb/table:Table":
                return name, {"arn": self._arn("dynamodb", f"table/{name}")}
            case "aws:lambda/function:Function":
                arn = self._arn("lambda", f"function:{name}")
                return name, {
                    "arn": arn,
                    "qualifiedArn": f"{arn}:$LATEST",
                    "invokeArn": f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/"
                    f"{arn}/invocations",
                    "version": "$LATEST",
                }
            case "aws:codestarconnections/connection:Connection":
                arn = self._arn("codeconnections", f"connection/{uid}")
                return arn, {"arn": arn, "connectionStatus": "PENDING"}
            case _:
                return f"{name}-{seed[:8]}", {}

    def _stack_reference(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        wanted = args.inputs.get("name") or args.name
        plan = self.stack_outputs.get(wanted)
        if plan is None:
            layer, environment = _layer_of_stack(wanted)
            raise UpstreamError(
                f"stack {wanted} does not exist; create it with"
                f" `{create_command(layer, environment)}`"
            )
        return wanted, {
            "name": wanted,
            "outputs": dict(plan.exports),
            "secretOutputNames": sorted(plan.secret_exports),
        }

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        # (answer, check failures): the SDK iterates the second item, so it is [] and never None.
        self.invoked.add(args.token)
        return self._answer(args), []

    def _answer(self, args: mocks.MockCallArgs) -> dict[str, Any]:
        account, region = self.platform.account_id, self.platform.region
        match args.token:
            case "aws:index/getCallerIdentity:getCallerIdentity":
                return {
                    "accountId": account,
                    "arn": f"arn:aws:iam::{account}:user/offline",
                    "userId": "AIDAOFFLINE",
                    "id": account,
                }
            case "aws:index/getRegion:getRegion":
                return {
                    "name": region,
                    "region": region,
                    "id": region,
                    "endpoint": f"ec2.{region}.amazonaws.com",
                }
            case "aws:index/getPartition:getPartition":
                return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
            case "aws:secretsmanager/getSecretVersion:getSecretVersion":
                return {
                    "arn": args.args.get("secretId"),
                    "secretId": args.args.get("secretId"),
                    "secretString": "offline-placeholder-token",
                    "versionId": "offline",
                    "versionStage": "AWSCURRENT",
                    "id": "offline",
                }
            case "aws:secretsmanager/getRandomPassword:getRandomPassword":
                # Letters and digits of the asked length, as GetRandomPassword would give.
                length = int(args.args.get("passwordLength") or 32)
                return {"randomPassword": ("offline0" * length)[:length], "id": "offline"}
        raise PlatformError(
            f"the offline plan has no mock for the invoke {args.token};"
            " add a realistic answer to PlatformMocks.call in toolbox/mocks.py"
        )


def _layer_of_stack(stack: str) -> tuple[str, str]:
    _, project, environment = stack.split("/")
    for layer in LAYERS:
        if layer.project == project:
            return layer.name, environment
    return project, environment
