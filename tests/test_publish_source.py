"""`./dev publish-source`: the folder zipped and uploaded to the source key, against moto."""

from __future__ import annotations

import io
import zipfile

import pytest
from invoke import Context, Exit
from moto import mock_aws

from shared.errors import ConfigError, PlatformError
from toolbox import automation, sources

BUCKET = "acme-foundation-source-111111111111-dev"


class Runner:
    """A deployed foundation, as the runner reads its outputs."""

    def __init__(self, outputs: dict) -> None:
        self._outputs = outputs
        self.asked: list[tuple[str, str]] = []

    def outputs(self, layer: str, env: str) -> dict:
        self.asked.append((layer, env))
        return dict(self._outputs)


@pytest.fixture
def app(tmp_path):
    folder = tmp_path / "app"
    (folder / "src").mkdir(parents=True)
    (folder / "Dockerfile").write_text("FROM node:20\n")
    (folder / "src" / "index.js").write_text("console.log('hi')\n")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return folder


@pytest.fixture
def s3_sourced(config_copy):
    """The tests' configuration with every service on the S3 source (keys by default)."""
    (config_copy / "stacks" / "pipeline" / "Pulumi.dev.yaml").write_text(
        "config:\n  platform-pipeline:sourceProvider: s3\n", encoding="utf-8"
    )
    return config_copy


@pytest.fixture
def s3(aws_session):
    with mock_aws():
        session = aws_session("us-east-1")
        client = session.client("s3")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield session


def test_the_folder_lands_zipped_at_the_source_key_as_a_new_version(app, s3, s3_sourced):
    runner = Runner({"sourceBucketName": BUCKET})

    first = sources.publish_source(runner, s3, "dev", app)
    (app / "src" / "index.js").write_text("console.log('bye')\n")
    second = sources.publish_source(runner, s3, "dev", app)

    assert runner.asked == [("foundation", "dev"), ("foundation", "dev")]
    assert (first.bucket, first.key, first.files) == (BUCKET, "source/app.zip", 2)
    assert first.version_id != second.version_id
    body = s3.client("s3").get_object(Bucket=BUCKET, Key="source/app.zip")["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert sorted(archive.namelist()) == ["Dockerfile", "src/index.js"]  # no .git
        assert archive.read("src/index.js") == b"console.log('bye')\n"
    versions = s3.client("s3").list_object_versions(Bucket=BUCKET, Prefix="source/app.zip")
    assert len(versions["Versions"]) == 2
    assert "s3://acme-foundation-source-111111111111-dev/source/app.zip" in second.line()


def test_the_same_files_give_the_same_zip(app, tmp_path):
    first, _ = sources.zip_folder(app)
    (app / "Dockerfile").touch()  # a newer mtime, the same content
    second, _ = sources.zip_folder(app)
    assert first == second


def test_each_service_has_its_own_key_and_the_first_is_the_default(s3_sourced):
    assert sources.source_key("dev") == "source/app.zip"
    assert sources.source_key("dev", "app") == "source/app.zip"
    assert sources.source_key("dev", "worker") == "source/worker.zip"


def test_the_worker_publishes_to_its_own_key(app, s3, s3_sourced):
    published = sources.publish_source(
        Runner({"sourceBucketName": BUCKET}), s3, "dev", app, "worker"
    )

    assert published.key == "source/worker.zip"
    listed = s3.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]
    assert [item["Key"] for item in listed] == ["source/worker.zip"]


def test_an_unknown_service_names_the_known_ones(s3_sourced):
    with pytest.raises(ConfigError) as error:
        sources.source_key("dev", "billing")
    # platform.yaml as the pipeline's reader names it (here, the tests' fixture's path)
    assert str(error.value).endswith(
        "platform.yaml: services: there is no service 'billing' (allowed: app, worker)"
    )


def test_a_service_without_the_s3_source_is_refused_before_any_upload(app, s3):
    runner = Runner({"sourceBucketName": BUCKET})
    with pytest.raises(PlatformError) as error:
        sources.publish_source(runner, s3, "dev", app, "worker")
    assert str(error.value) == (
        "service worker of dev takes its source from github, not s3: nothing would read the"
        " upload (set sourceProvider: s3 under services.worker in platform.yaml, or name another"
        " with --service)"
    )
    assert runner.asked == []


def test_the_key_is_checked_by_the_pipeline_layers_reader(s3_sourced):
    with (s3_sourced / "stacks" / "pipeline" / "Pulumi.dev.yaml").open("a") as out:
        out.write("  platform-pipeline:sourceKey: /abs.zip\n")
    with pytest.raises(ConfigError, match=r"platform-pipeline:sourceKey: '/abs.zip'"):
        sources.source_key("dev")


def test_a_missing_folder_or_an_empty_one_fails_before_any_upload(tmp_path, s3):
    runner = Runner({"sourceBucketName": BUCKET})
    with pytest.raises(PlatformError, match="not a folder"):
        sources.publish_source(runner, s3, "dev", tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PlatformError, match="has no files"):
        sources.publish_source(runner, s3, "dev", tmp_path / "empty")
    assert runner.asked == []
    assert "Contents" not in s3.client("s3").list_objects_v2(Bucket=BUCKET)


def test_an_old_foundation_without_the_source_bucket_names_the_fix(app, s3, s3_sourced):
    with pytest.raises(PlatformError) as error:
        sources.publish_source(Runner({}), s3, "dev", app)
    assert str(error.value) == (
        "the foundation stack of dev exports no sourceBucketName; run"
        " `./dev deploy --layer foundation --env dev`"
    )


def test_an_upload_that_s3_refuses_is_one_line(app, s3, s3_sourced):
    with pytest.raises(PlatformError) as error:
        sources.publish_source(Runner({"sourceBucketName": "no-such-bucket"}), s3, "dev", app)
    assert str(error.value).startswith("cannot upload to s3://no-such-bucket/source/app.zip:")
    assert "\n" not in str(error.value)


def test_the_task_without_the_cli_exits_with_one_line(monkeypatch, app):
    import tasks

    monkeypatch.setattr(automation.shutil, "which", lambda name: None)
    with pytest.raises(Exit) as stopped:
        tasks.publish_source(Context(), path=str(app), env="dev")
    assert stopped.value.code == 1
    assert stopped.value.message == f"error: {automation.CLI_MISSING}"
