"""CodeBuild: the four projects, their log groups, report groups and buildspecs (run for real)."""

from __future__ import annotations

import json
import re

import pytest

from tests.pipeline_support import (
    APP,
    BUILDSPEC_FOLDER,
    LOG_GROUP,
    PROJECT,
    REPORT_GROUP,
    WORKER,
    buildspec,
    named,
    project,
    run_buildspec,
    variables,
)

KEYS = ("docker-build", "unit-tests", "integration-tests", "security-scan")
BUILDSPECS = {key: f"{key}.yml" for key in KEYS}
CODEBUILD_BUILTINS = {"CODEBUILD_RESOLVED_SOURCE_VERSION", "AWS_REGION", "AWS_DEFAULT_REGION"}
SERVICES = (APP, WORKER)


@pytest.mark.parametrize("service", SERVICES)
def test_four_projects_small_managed_linux_encrypted_run_by_codepipeline(dev, service):
    plan = dev["pipeline"]
    key_arn = dev["foundation"].exports["kmsKeyArn"]
    assert plan.exports["projectNames"][service] == {
        key: f"acme-pipeline-{service}-{key}-dev" for key in KEYS
    }
    for key in KEYS:
        inputs = project(plan, key, service).inputs
        assert inputs["environment"]["computeType"] == "BUILD_GENERAL1_SMALL", key
        assert inputs["environment"]["type"] == "LINUX_CONTAINER", key
        assert re.fullmatch(
            r"aws/codebuild/(amazonlinux-x86_64-standard:5\.0|standard:7\.0)",
            inputs["environment"]["image"],
        ), key
        assert inputs["encryptionKey"] == key_arn, key
        assert inputs["source"]["type"] == "CODEPIPELINE", key
        assert inputs["artifacts"]["type"] == "CODEPIPELINE", key
        assert 5 <= inputs["buildTimeout"] <= 60, key
        assert inputs["queuedTimeout"] <= 480, key


@pytest.mark.parametrize("service", SERVICES)
def test_each_project_logs_to_its_own_encrypted_log_group_kept_seven_days(dev, service):
    plan = dev["pipeline"]
    key_arn = dev["foundation"].exports["kmsKeyArn"]
    groups = plan.exports["logGroupNames"][service]
    codebuild = [
        g
        for g in plan.of_type(LOG_GROUP)
        if g.inputs["name"].startswith(f"/aws/codebuild/acme-pipeline-{service}-")
    ]
    assert len({groups[key] for key in KEYS}) == len(KEYS) == len(codebuild)
    for key in KEYS:
        assert groups[key] == f"/aws/codebuild/acme-pipeline-{service}-{key}-dev"
        logs = project(plan, key, service).inputs["logsConfig"]["cloudwatchLogs"]
        assert logs == {"status": "ENABLED", "groupName": groups[key]}, key
        group = named(plan, LOG_GROUP, groups[key]).inputs
        assert group["retentionInDays"] == 7, key
        assert group["kmsKeyId"] == key_arn, key


def test_log_retention_follows_config_and_refuses_what_cloudwatch_refuses(replan):
    plan = replan("pipeline", config={"platform-pipeline:logRetentionDays": "30"})
    assert {g.inputs["retentionInDays"] for g in plan.of_type(LOG_GROUP)} == {30}
    from shared.errors import ConfigError

    with pytest.raises(ConfigError, match="platform-pipeline:logRetentionDays"):
        replan("pipeline", config={"platform-pipeline:logRetentionDays": "8"})


def test_every_log_group_is_inside_what_the_foundation_key_policy_allows(dev, prod):
    accounts = {"dev": "111111111111", "prod": "222222222222"}
    for plans in (dev, prod):
        environment = plans["pipeline"].environment
        prefixes = ("/aws/codebuild/acme-pipeline-", "/aws/lambda/acme-pipeline-")
        key_policy = json.loads(plans["foundation"].one("aws:kms/key:Key").inputs["policy"])
        allowed = [
            pattern
            for s in key_policy["Statement"]
            if "Service" in s.get("Principal", {})
            and s["Principal"]["Service"][0].startswith("logs.")
            for pattern in s["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
        ]
        assert len(allowed) == 2
        for group in plans["pipeline"].of_type(LOG_GROUP):
            name = group.inputs["name"]
            assert name.startswith(prefixes), name
            assert name.endswith(f"-{environment}"), name
            arn = f"arn:aws:logs:us-east-1:{accounts[environment]}:log-group:{name}"
            assert any(
                re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), arn) for pattern in allowed
            ), name


@pytest.mark.parametrize("service", SERVICES)
def test_docker_build_is_privileged_with_docker_layer_cache(dev, service):
    plan = dev["pipeline"]
    docker = project(plan, "docker-build", service).inputs
    assert docker["environment"]["privilegedMode"] is True
    assert docker["cache"]["type"] == "LOCAL"
    assert "LOCAL_DOCKER_LAYER_CACHE" in docker["cache"]["modes"]
    for key in ("unit-tests", "integration-tests", "security-scan"):
        assert project(plan, key, service).inputs["environment"]["privilegedMode"] is False, key


@pytest.mark.parametrize("service", SERVICES)
def test_docker_build_gets_its_repository_and_where_to_push(dev, service):
    env = variables(project(dev["pipeline"], "docker-build", service))
    assert env["REPOSITORY_URL"] == (
        f"111111111111.dkr.ecr.us-east-1.amazonaws.com/acme-registry-{service}-dev"
    )
    assert env["REPOSITORY_NAME"] == f"acme-registry-{service}-dev"
    assert env["AWS_ACCOUNT_ID"] == "111111111111"
    assert env["ECR_REGION"] == "us-east-1"
    assert env["CONTAINER_NAME"] == service


@pytest.mark.parametrize("service", SERVICES)
def test_test_projects_publish_junit_to_their_own_encrypted_report_groups(dev, service):
    plan, foundation = dev["pipeline"], dev["foundation"]
    groups = plan.of_type(REPORT_GROUP)
    assert len(groups) == 4  # two per service
    for key in ("unit-tests", "integration-tests"):
        arn = variables(project(plan, key, service))["REPORT_GROUP_ARN"]
        assert arn == (
            f"arn:aws:codebuild:us-east-1:111111111111:report-group/acme-pipeline-{service}-{key}-dev"
        )
        (group,) = [g for g in groups if arn.endswith(f":report-group/{g.inputs['name']}")]
        assert group.inputs["type"] == "TEST"
        s3 = group.inputs["exportConfig"]["s3Destination"]
        assert group.inputs["exportConfig"]["type"] == "S3"
        assert s3["bucket"] == foundation.exports["artifactBucketName"]
        assert s3["encryptionKey"] == foundation.exports["kmsKeyArn"]
        assert s3["encryptionDisabled"] is False
        spec = buildspec(BUILDSPECS[key])
        (report,) = spec["reports"].values()
        assert list(spec["reports"]) == ["$REPORT_GROUP_ARN"]
        assert report["file-format"] == "JUNITXML"


def test_security_scan_threshold_is_high_by_default_and_configurable(dev, replan):
    assert variables(project(dev["pipeline"], "security-scan"))["SCAN_SEVERITY_THRESHOLD"] == "HIGH"
    plan = replan("pipeline", config={"platform-pipeline:scanSeverityThreshold": "MEDIUM"})
    assert variables(project(plan, "security-scan"))["SCAN_SEVERITY_THRESHOLD"] == "MEDIUM"
    # what a service states wins over the layer's value: the worker states CRITICAL
    worker = variables(project(plan, "security-scan", WORKER))
    assert worker["SCAN_SEVERITY_THRESHOLD"] == "CRITICAL"


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("key", KEYS)
def test_buildspec_is_what_the_project_runs_and_needs_only_the_variables_it_gets(dev, key, service):
    """Every $VARIABLE a buildspec reads is set by its project, CodeBuild, or itself."""
    plan = dev["pipeline"]
    resource = project(plan, key, service)
    text = (BUILDSPEC_FOLDER / BUILDSPECS[key]).read_text()
    assert resource.inputs["source"]["buildspec"] == text
    spec = buildspec(BUILDSPECS[key])
    assert str(spec["version"]) == "0.2"
    assert spec["phases"]["build"]["commands"]
    used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text))
    own = set(re.findall(r"(?:export\s+|for\s+|^\s*|\s)([A-Z][A-Z0-9_]*)(?:=|\s+in\s)", text, re.M))
    own |= set((spec.get("env") or {}).get("variables") or {})
    missing = used - own - CODEBUILD_BUILTINS - set(variables(resource))
    assert not missing, f"{key} reads {sorted(missing)} that nothing sets"


def test_unit_and_integration_buildspecs_run_the_node_tests():
    unit, integration = buildspec("unit-tests.yml"), buildspec("integration-tests.yml")
    for spec in (unit, integration):
        assert "nodejs" in spec["phases"]["install"]["runtime-versions"]
        assert "npm ci" in spec["phases"]["pre_build"]["commands"]
    assert "npm test" in unit["phases"]["build"]["commands"]
    assert "npm run test:integration" in integration["phases"]["build"]["commands"]


def _docker_env(dev) -> dict[str, str]:
    return variables(project(dev["pipeline"], "docker-build"))


def test_docker_build_pushes_the_commit_tag_and_writes_image_definitions(dev, tmp_path):
    env = _docker_env(dev)
    commit = "0123456789abcdef0123456789abcdef01234567"
    run = run_buildspec(
        "docker-build.yml", {**env, "CODEBUILD_RESOLVED_SOURCE_VERSION": commit}, tmp_path
    )
    assert run.returncode == 0, run.output
    image = f"{env['REPOSITORY_URL']}:{commit}"
    docker = [call for call in run.calls if call[0] == "docker"]
    assert docker[0][:2] == ["docker", "login"]
    assert docker[0][-1] == env["REPOSITORY_URL"].split("/")[0]
    assert ["docker", "build", "--tag", image, "."] in docker
    assert ["docker", "push", image] in docker
    assert not any("latest" in " ".join(call) for call in run.calls)
    written = json.loads((run.workdir / "imagedefinitions.json").read_text())
    assert written == [{"name": "app", "imageUri": image}]
    assert buildspec("docker-build.yml")["artifacts"]["files"] == ["imagedefinitions.json"]


def test_docker_build_reuses_an_image_already_pushed_for_the_commit(dev, tmp_path):
    env = {
        **_docker_env(dev),
        "CODEBUILD_RESOLVED_SOURCE_VERSION": "abc123",
        "FAKE_IMAGE_EXISTS": "1",
    }
    run = run_buildspec("docker-build.yml", env, tmp_path)
    assert run.returncode == 0, run.output
    assert not any(call[:2] == ["docker", "push"] for call in run.calls)
    assert (run.workdir / "imagedefinitions.json").exists()


def test_docker_build_refuses_to_push_without_a_commit(dev, tmp_path):
    run = run_buildspec("docker-build.yml", {**_docker_env(dev)}, tmp_path)
    assert run.returncode != 0
    assert not any(call[0] == "docker" for call in run.calls)


def _basic(status: str = "COMPLETE", **counts: int) -> dict:
    """A basic-scan DescribeImageScanFindings response (shape from the ECR API reference)."""
    findings = [
        {"name": f"CVE-0000-{severity}{i}", "uri": "https://example", "severity": severity}
        for severity, count in counts.items()
        for i in range(count)
    ]
    return {
        "imageScanStatus": {"status": status, "description": "The scan was completed."},
        "imageScanFindings": {
            "findings": findings,
            **({"findingSeverityCounts": dict(counts)} if counts else {}),
        },
    }


def _enhanced(status: str = "ACTIVE", **counts: int) -> dict:
    """An enhanced (Inspector) response: findings in enhancedFindings, no severity counts."""
    return {
        "imageScanStatus": {"status": status, "description": "Continuous scan is selected."},
        "imageScanFindings": {
            "enhancedFindings": [
                {
                    "title": f"CVE-0000-{severity}{i} - openssl",
                    "findingArn": f"arn:aws:inspector2:us-east-1:111111111111:finding/{i}",
                    "severity": severity,
                    "status": "ACTIVE",
                }
                for severity, count in counts.items()
                for i in range(count)
            ]
        },
    }


def _scan(dev, tmp_path, threshold: str, response: dict, **env: str):
    response_file = tmp_path / "response.json"
    response_file.write_text(json.dumps(response), encoding="utf-8")
    env = {
        **variables(project(dev["pipeline"], "security-scan")),
        "SCAN_SEVERITY_THRESHOLD": threshold,
        "FAKE_SCAN_RESPONSE": str(response_file),
        "SCAN_POLL_SECONDS": "0",
        **env,
    }
    definitions = json.dumps([{"name": "app", "imageUri": "123.dkr.ecr.x.amazonaws.com/r:c0ffee"}])
    return run_buildspec(
        "security-scan.yml", env, tmp_path, files={"imagedefinitions.json": definitions}
    )


def test_security_scan_reads_the_scan_of_the_built_image(dev, tmp_path):
    run = _scan(dev, tmp_path, "HIGH", _basic())
    assert run.returncode == 0, run.output
    reads = [c for c in run.calls if c[:3] == ["aws", "ecr", "describe-image-scan-findings"]]
    repository = variables(project(dev["pipeline"], "security-scan"))["REPOSITORY_NAME"]
    assert reads
    for call in reads:
        assert call[call.index("--repository-name") + 1] == repository
        assert call[call.index("--image-id") + 1] == "imageTag=c0ffee"


@pytest.mark.parametrize("scan", [_basic, _enhanced], ids=["basic", "enhanced"])
@pytest.mark.parametrize(
    ("threshold", "counts", "fails"),
    [
        ("HIGH", {"HIGH": 1}, True),
        ("HIGH", {"CRITICAL": 2}, True),
        ("HIGH", {"MEDIUM": 5, "LOW": 9}, False),
        ("MEDIUM", {"MEDIUM": 1}, True),
        ("CRITICAL", {"HIGH": 3}, False),
        ("LOW", {"LOW": 1}, True),
        ("LOW", {}, False),
    ],
)
def test_security_scan_fails_on_findings_at_or_above_the_threshold(
    dev, tmp_path, scan, threshold, counts, fails
):
    run = _scan(dev, tmp_path, threshold, scan(**counts))
    assert (run.returncode != 0) is fails, run.output
    for severity in counts:  # the findings are printed either way
        assert f"CVE-0000-{severity}0" in run.output


@pytest.mark.parametrize("scan", [_basic, _enhanced], ids=["basic", "enhanced"])
def test_security_scan_waits_while_the_scan_is_in_progress(dev, tmp_path, scan):
    final = "COMPLETE" if scan is _basic else "ACTIVE"
    run = _scan(
        dev, tmp_path, "HIGH", scan(HIGH=1), FAKE_SCAN_STATUSES=f"PENDING,IN_PROGRESS,{final}"
    )
    assert run.returncode != 0
    assert "1 finding(s) at or above HIGH" in run.output  # it got to the counts after waiting
    statuses = [c for c in run.calls if "imageScanStatus.status" in c]
    assert len(statuses) == 3


@pytest.mark.parametrize("status", ["FAILED", "UNSUPPORTED_IMAGE", "FINDINGS_UNAVAILABLE"])
def test_security_scan_fails_closed_when_the_scan_fails(dev, tmp_path, status):
    run = _scan(dev, tmp_path, "HIGH", _basic(status=status))
    assert run.returncode != 0
    assert f"ended {status}" in run.output


def test_security_scan_fails_closed_when_the_scan_never_finishes(dev, tmp_path):
    run = _scan(
        dev, tmp_path, "HIGH", _basic(), FAKE_SCAN_STATUSES="IN_PROGRESS", SCAN_POLL_ATTEMPTS="3"
    )
    assert run.returncode != 0
    assert "did not finish (last status: IN_PROGRESS)" in run.output


def test_projects_are_only_the_four_duties_of_each_service(dev):
    assert sorted(p.inputs["name"] for p in dev["pipeline"].of_type(PROJECT)) == [
        f"acme-pipeline-{service}-{key}-dev" for service in SERVICES for key in sorted(KEYS)
    ]
