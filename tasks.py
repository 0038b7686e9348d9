"""The project's menu: `./dev --list` (or `invoke --list` once `source .venv/bin/activate`).

Tasks are thin: each calls functions in the project that the tests reach directly. Every task is
wrapped by :func:`one_line_errors`, so the project's own errors end as one line, never a
traceback. Four groups:

- stacks (real Pulumi, needs the CLI and AWS): preflight, preview, deploy, outputs, refresh,
  drift, destroy (the four that act on stacks run preflight first)
- offline: synth (the plan under mocks), affected (which layers a change touches)
- checks: test, lint, scan
- setup (a team's first steps): init, bootstrap, store-token

``./dev`` runs :class:`Menu`, invoke's own Program with the same tasks: ``./dev`` alone lists
them, and a mistyped flag ends in the same ``error:`` line as every other failure.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

from invoke.collection import Collection
from invoke.exceptions import Exit, ParseError
from invoke.program import Program
from invoke.tasks import task as invoke_task

from shared.errors import PlatformError

ENV_HELP = "environment (a stack name defined in platform.yaml), e.g. prod; default: dev"
CHANGE_ENV_HELP = (
    "environment to change (a stack name defined in platform.yaml); required, no default"
)
LAYER_HELP = "one layer (foundation, registry, pipeline); all layers in dependency order if omitted"
YES_HELP = "do not ask for confirmation (non-interactive, as CI runs it); default: ask"


def one_line_errors(body):
    """``body`` with the project's own errors (PlatformError) turned into ``Exit``: one line,
    ``error: ...``, and exit code 1, which invoke prints without a traceback."""

    @functools.wraps(body)
    def run(*args, **kwargs):
        try:
            return body(*args, **kwargs)
        except PlatformError as exc:
            raise Exit(f"error: {exc}", code=1) from None

    return run


def task(**options):
    """invoke's ``@task(help=...)`` over :func:`one_line_errors`: how every task here is made."""

    def make(body):
        return invoke_task(**options)(one_line_errors(body))

    return make


def _require_env(task_name: str, env: str) -> None:
    """A task that changes AWS never guesses the environment: one line naming the flag."""
    if env:
        return
    from shared.settings import environments

    raise PlatformError(
        f"{task_name} changes AWS, so it needs the environment: add --env"
        f" (one of {', '.join(environments())})"
    )


@task(
    help={
        "env": ENV_HELP,
        "layer": LAYER_HELP,
        "tree": "also print each layer's tree of components and resources (before the"
        " summary); default: the summary only",
        "versions": "only print the versions of the AWS spec data the checks read; default: off",
    }
)
def synth(c, env="dev", layer="", tree=False, versions=False):
    """Offline: plan the layers under mocks and check policies (no AWS)."""
    if versions:
        from toolbox.specs.data import versions as spec_versions

        for name, version in spec_versions().items():
            print(f"{name} {version}")
        return
    from toolbox.synth import summary, trees
    from toolbox.synth import synth as run_synth

    result = run_synth(env, layer or None)
    if tree:
        print(trees(result))
    print(summary(result))
    if result.violations:
        raise PlatformError(
            f"{result.violations} mandatory policy violation(s) or spec finding(s); see above"
        )


@task(
    help={
        "workers": "pytest-xdist workers, or 0 to run serially; default: auto (one per core)",
        "k": "only tests matching this pytest -k expression; all tests if omitted",
    }
)
def test(c, workers="auto", k=""):
    """Checks: run the test suite in parallel (pytest -n auto)."""
    from toolbox.checks import run_tests

    run_tests(workers, k)


# -- stacks: real Pulumi through the Automation API ---------------------------------------------


def _runner():
    """The real runner (checks for the Pulumi CLI first)."""
    from toolbox.automation import PulumiRunner

    return PulumiRunner()


def _gate(env: str, purpose: str, runner):
    """The preflight step the orchestration runs before it touches a stack."""
    from toolbox.preflight import Purpose, for_environment, gate

    return gate(for_environment(env, runner), Purpose(purpose))


def _finish(report) -> None:
    """Print a report; one clear line and exit 1 if a layer failed."""
    print("\n".join(report.lines()))
    if not report.ok:
        raise PlatformError(report.summary())


@task(help={"env": ENV_HELP, "layer": LAYER_HELP})
def preflight(c, env="dev", layer=""):
    """Stacks: check CLI, backend, account and what each service's pipeline needs."""
    from toolbox import orchestration
    from toolbox.preflight import for_environment

    _, layers = orchestration.resolve(env, layer)
    report = for_environment(env).run(tuple(current.name for current in layers))
    print("\n".join(report.lines()))
    if not report.ok:
        raise PlatformError(report.summary())


@task(help={"env": ENV_HELP, "layer": LAYER_HELP})
def preview(c, env="dev", layer=""):
    """Stacks: pulumi preview, one layer or all in dependency order."""
    from toolbox import orchestration

    orchestration.resolve(env, layer)
    runner = _runner()
    report = orchestration.preview(
        runner, env, layer or None, preflight=_gate(env, "preview", runner)
    )
    _finish(report)


@task(
    help={
        "env": CHANGE_ENV_HELP,
        "layer": LAYER_HELP,
        "yes": YES_HELP,
        "changed": "only layers whose inputs changed since the commit their stack records,"
        " and what depends on them (a stack whose last deploy failed is never skipped);"
        " default: every selected layer",
    }
)
def deploy(c, env="", layer="", yes=False, changed=False):
    """Stacks: pulumi up, one layer or all in order (checks upstream)."""
    from toolbox import affected, orchestration

    _require_env("deploy", env)
    from toolbox.preflight import Purpose, for_environment, gate

    orchestration.resolve(env, layer)
    if changed and layer:
        raise PlatformError("--changed picks the layers itself; drop --layer (or --changed)")
    runner = _runner()
    skip: dict[str, str] = {}
    if changed:
        decisions = affected.changed_since_deployed(runner, env)
        skip = {d.layer: d.reason for d in decisions if not d.deploy}
        for decision in decisions:
            verdict = "deploy" if decision.deploy else "skip"
            print(f"{verdict:<6} {decision.layer}: {decision.reason}")
        if len(skip) == len(decisions):
            print(f"nothing to deploy in {env}: every stack is at its recorded commit")
            return
    check = for_environment(env, runner)
    report = orchestration.deploy(
        runner,
        env,
        layer or None,
        yes=yes,
        preflight=gate(check, Purpose.DEPLOY),
        ready=check.ready,
        skip=skip,
        commits=affected.commits_to_record(),
    )
    _finish(report)


@task(
    help={
        "base": "the commit to compare with (default: where this branch forked from origin/main,"
        " else main, else HEAD~1); one that names no commit (none, 000...0) affects every layer",
        "json": "print the result as JSON (for CI); default: one line per layer",
        "outputs_file": "append layers=<json list> and any=<true|false> to this file"
        ' (CI: "$GITHUB_OUTPUT"); default: none',
        "summary_file": 'append the result as Markdown to this file (CI: "$GITHUB_STEP_SUMMARY");'
        " default: none",
    }
)
def affected(c, base="", json_=False, outputs_file="", summary_file=""):
    """Offline: the layers a change touches, and their downstream."""
    from toolbox.affected import affected as find_affected
    from toolbox.affected import append_outputs, github_outputs

    result = find_affected(base or None)
    if outputs_file:
        append_outputs(Path(outputs_file), github_outputs(result))
    if summary_file:
        with Path(summary_file).open("a", encoding="utf-8") as summary:
            summary.write(result.markdown())
    print(json.dumps(result.as_dict(), indent=2) if json_ else "\n".join(result.lines()))


@task(
    help={
        "env": ENV_HELP,
        "layer": LAYER_HELP,
        "json": "print the outputs as JSON; default: a table",
    }
)
def outputs(c, env="dev", layer="", json_=False):
    """Stacks: print the deployed stacks' outputs (secrets redacted)."""
    from toolbox import orchestration

    orchestration.resolve(env, layer)
    report = orchestration.outputs(_runner(), env, layer or None)
    print(json.dumps(report.as_dict(), indent=2) if json_ else "\n".join(report.lines()))


@task(help={"env": ENV_HELP, "layer": LAYER_HELP})
def verify(c, env="dev", layer=""):
    """Stacks: check the live resources behind the stacks (post-deploy)."""
    import boto3

    from toolbox import orchestration
    from toolbox.verify import table
    from toolbox.verify import verify as run_verify

    platform, _ = orchestration.resolve(env, layer)
    report = orchestration.outputs(_runner(), env, layer or None)
    results = run_verify(report.as_dict(), boto3.Session(region_name=platform.region))
    print(table(results))
    failed = sum(not result.ok for result in results)
    if failed:
        raise PlatformError(f"{failed} live check(s) failed in {env}; see the table above")


@task(
    help={
        "env": CHANGE_ENV_HELP,
        "path": "the folder to zip and upload (the service's source); required",
        "service": "the service (platform.yaml services) whose S3 source it is; default: the"
        " first, the application",
    }
)
def publish_source(c, path, env="", service=""):
    """Stacks: zip a folder, upload it as a service's S3 source."""
    import boto3

    from toolbox import orchestration
    from toolbox.sources import publish_source as run_publish
    from toolbox.sources import require_folder

    require_folder(Path(path))
    _require_env("publish-source", env)
    platform, _ = orchestration.resolve(env, "")
    session = boto3.Session(region_name=platform.region)
    published = run_publish(_runner(), session, env, Path(path), service)
    print(published.line())


@task(
    help={
        "env": ENV_HELP,
        "limit": "how many releases to show, newest first; default: 10",
        "service": "only this service's releases (a service of platform.yaml); default: every"
        " service's",
    }
)
def releases(c, env="dev", limit=10, service=""):
    """Stacks: recent deployments from the ledger, newest first."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from toolbox import orchestration
    from toolbox.releases import check_service, recent, table

    if limit < 1:
        raise PlatformError("--limit must be 1 or more")
    platform, _ = orchestration.resolve(env, "foundation")
    if service:
        check_service(service, tuple(s.name for s in platform.services))
    report = orchestration.outputs(_runner(), env, "foundation")
    ledger_table = (report.as_dict().get("foundation") or {}).get("ledgerTableName")
    if not ledger_table:
        raise PlatformError(
            f"the foundation stack of {env} exports no ledgerTableName;"
            f" run `./dev deploy --layer foundation --env {env}`"
        )
    try:
        rows = recent(
            boto3.Session(region_name=platform.region), ledger_table, limit, service=service
        )
    except (ClientError, BotoCoreError) as exc:
        # AWS's own errors, not the project's: named with the table they came from.
        raise PlatformError(f"reading the ledger {ledger_table}: {exc}") from None
    print(table(rows, service))


@task(help={"env": CHANGE_ENV_HELP, "layer": LAYER_HELP})
def refresh(c, env="", layer=""):
    """Stacks: refresh the stacks' state from what exists in AWS."""
    from toolbox import orchestration

    _require_env("refresh", env)
    orchestration.resolve(env, layer)
    runner = _runner()
    report = orchestration.refresh(
        runner, env, layer or None, preflight=_gate(env, "refresh", runner)
    )
    _finish(report)


@task(
    help={
        "env": ENV_HELP,
        "layer": LAYER_HELP,
        "report": "also write the report as JSON to this file (CI hands it to the issue job);"
        " default: none",
        "issue": "instead of checking the stacks: merge the JSON reports in this folder and open,"
        " update or close the environment's drift issue (gh CLI; CI's last drift job);"
        " default: check the stacks",
    }
)
def drift(c, env="dev", layer="", report="", issue=""):
    """Stacks: refresh-preview each stack; exit 2 when AWS drifted."""
    from toolbox import orchestration
    from toolbox.drift import detect, gh, merge_reports, sync_issue

    orchestration.resolve(env, layer)
    if issue:
        result = merge_reports(Path(issue), env)
        print("\n".join(result.lines()))
        print(sync_issue(result, gh, _run_url()).line())
        return
    result = detect(_runner(), env, layer or None)
    print("\n".join(result.lines()))
    if report:
        result.save(Path(report))
    if result.exit_code:
        raise Exit(f"error: {result.summary()}", code=int(result.exit_code))
    print(result.summary())


@task(
    help={
        "env": ENV_HELP,
        "role": "drift (read-only: what a refresh reads), preview (read-only: the state, the"
        " programs' invokes, the preflight) or deploy (what an up creates, updates, deletes and"
        " tags, plus iam:PassRole); default: drift",
        "backend": "the state backend URL whose bucket the role reads (drift, preview) or writes"
        " (deploy);"
        " default: $PULUMI_BACKEND_URL (no state statements unless it is s3://)",
        "out": "a folder to write the policy to as managed policies (platform-ROLE-ENV-N.json)"
        " with the commands that attach them; default: print it, if one managed policy holds it",
        "max_policies": "how many managed policies the role may have (IAM: 10 by default, 20 at"
        " most on request); default: 10",
    }
)
# invoke makes each parameter an option: they are never passed by position.
def operator_policy(c, env="dev", role="drift", backend="", out="", max_policies=10):  # noqa: PLR0917
    """Offline: the IAM policy of the CI deploy, preview or drift role, as managed policies."""
    from toolbox.operator_policy import (
        MANAGED_POLICIES_PER_ROLE_MAX,
        MANAGED_POLICY_CHARACTERS,
        characters,
        for_environment,
        managed_policies,
        render,
        write_managed_policies,
    )

    url = backend or os.environ.get("PULUMI_BACKEND_URL", "")
    if not 1 <= max_policies <= MANAGED_POLICIES_PER_ROLE_MAX:
        raise PlatformError(
            f"--max-policies must be 1 to {MANAGED_POLICIES_PER_ROLE_MAX} (IAM's quota),"
            f" not {max_policies}"
        )
    try:
        document, state = for_environment(env, role, url)
        parts = managed_policies(document, most=max_policies)
    except ValueError as exc:
        # toolbox.operator_policy says ValueError for a --role or --max-policies it cannot use.
        raise PlatformError(str(exc)) from None
    if state is None:
        print(
            f"note: the backend {url or '(none set)'} is not s3://bucket/prefix, so the policy"
            " has no state statements; pass --backend s3://... for an S3 backend",
            file=sys.stderr,
        )
    if not out:
        if len(parts) > 1:
            raise PlatformError(
                f"the {role} policy for {env} is {characters(document):,} characters, more"
                f" than one managed policy holds ({MANAGED_POLICY_CHARACTERS:,}): pass --out DIR"
                f" to write it as {len(parts)} managed policies (docs/operations.md)"
            )
        print(render(parts[0]))
        return
    try:
        print(write_managed_policies(Path(out), f"platform-{role}-{env}", parts, env))
    except OSError as exc:
        raise PlatformError(
            f"--out {out}: cannot write the policies there ({exc.strerror})"
        ) from None


def _run_url() -> str:
    """This GitHub Actions run's address, or "" outside CI."""
    keys = ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    server, repo, run = (os.environ.get(key, "") for key in keys)
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else ""


@task(
    help={
        "env": CHANGE_ENV_HELP,
        "layer": "one layer; all layers in reverse dependency order if omitted",
        "force": "destroy the layer even while a downstream stack still exists (never unprotects);"
        " default: refuse",
        "yes": YES_HELP,
    }
)
def destroy(c, env="", layer="", force=False, yes=False):
    """Stacks: destroy in reverse order; refuses if downstream exists."""
    from toolbox import orchestration
    from toolbox.automation import ask

    _require_env("destroy", env)
    platform, _ = orchestration.resolve(env, layer)
    runner = _runner()
    if platform.protect:
        print(f"note: {env} protects its stateful resources; pulumi refuses to delete them")
    report = orchestration.destroy(
        runner,
        env,
        layer or None,
        force=force,
        confirm=None if yes else ask,
        preflight=_gate(env, "destroy", runner),
    )
    _finish(report)


# -- checks -----------------------------------------------------------------------------------


@task()
def lint(c):
    """Checks offline: ruff, basedpyright, yamllint, actionlint, zizmor, import contracts."""
    from toolbox.checks import lint as run_lint
    from toolbox.checks import report

    report(run_lint(), "lint")


@task(
    help={
        "allow_unaudited": "only warn when no vulnerability service is reachable (offline"
        " machine); default: fail",
    }
)
def scan(c, allow_unaudited=False):
    """Checks: bandit on the code, safety (or pip-audit) on uv.lock (needs the internet)."""
    from toolbox.checks import report
    from toolbox.checks import scan as run_scan

    report(run_scan(allow_unaudited), "scan")


@task(
    help={
        "quick": "the reduced set (fewer runs, 10 and 50 services, no suite run): < 1 min;"
        " default: the full set",
        "save": "write bench/results.json after a --quick run too; default: only the full run"
        " writes it",
        "baseline": "a git ref (e.g. main) whose synth is timed alternately with this tree's;"
        " default: none",
        "suite": "time the test suite in a --quick run too; default: only the full run does",
    }
)
def bench(c, quick=False, save=False, baseline="", suite=False):
    """Bench: time the offline plan, its scaling, the parallel tests."""
    from bench.run import run, table
    from bench.run import save as save_results

    results = run(quick=quick, baseline=baseline, with_suite=suite or not quick)
    print(table(results))
    if save or not quick:
        print(f"results: {save_results(results).relative_to(Path.cwd())}")


def _ask(question: str, now: str) -> str:
    """Ask on the terminal; Enter keeps the current value."""
    return input(f"{question} [{now}]: ")


def _terminal() -> bool:
    """A person can answer: input is a terminal and this is not CI."""
    return sys.stdin.isatty() and os.environ.get("CI", "").lower() != "true"


@task(
    iterable=["account", "region", "service"],
    help={
        "namespace": "prefix of every physical name (2-12 chars, a-z 0-9); asked if omitted",
        "account": "ENV=ACCOUNT_ID, once per environment of platform.yaml; asked if omitted",
        "region": "ENV=REGION (or one REGION for every environment); asked if omitted",
        "email": "address the pipeline failure notifications go to; asked if omitted",
        "repository": "where this code lives (the Repository tag), e.g."
        " github.com/org/platform; asked if omitted",
        "github_owner": "GitHub owner of the services' repositories; asked if omitted",
        "github_branch": "the branch the pipelines deploy; asked if omitted",
        "ecs_cluster": "ECS cluster the Deploy stages update; asked if omitted",
        "service": "a service, once per service, the application first; its GitHub repository"
        " and ECS service are named after it; asked if omitted",
    },
)
def init(  # noqa: PLR0917 - one flag per value a team sets
    c,
    namespace="",
    account=None,
    region=None,
    email="",
    repository="",
    github_owner="",
    github_branch="",
    ecs_cluster="",
    service=None,
):
    """Setup: point platform.yaml and the stack files at your organisation (checked first)."""
    from toolbox.init import init as run_init
    from toolbox.init import resolve

    given = {
        "namespace": namespace,
        "repository": repository,
        "email": email,
        "github_owner": github_owner,
        "github_branch": github_branch,
        "ecs_cluster": ecs_cluster,
        "services": tuple(service or ()),
    }
    try:
        choices = resolve(given, account or [], region or [], ask=_ask if _terminal() else None)
        lines = run_init(choices)
    except EOFError:
        raise Exit("error: init: input ended before every value was given", code=1) from None
    print("\n".join(lines))
    print("next: ./dev synth --env E for each environment, then ./dev bootstrap --env E")


@task(
    help={
        "env": CHANGE_ENV_HELP,
        "dry_run": "only read: print what would be created, change nothing; default: create",
    }
)
def bootstrap(c, env="", dry_run=False):
    """Setup: create the state bucket, KMS key, GitHub OIDC provider and CI roles if missing."""
    _require_env("bootstrap", env)
    from botocore.exceptions import BotoCoreError, ClientError

    from toolbox.bootstrap import for_environment, report

    try:
        boot = for_environment(env, dry_run=dry_run)
        steps = boot.run()
    except ValueError as exc:
        raise PlatformError(str(exc)) from None
    except (ClientError, BotoCoreError) as exc:
        raise Exit(f"error: bootstrap {env}: {exc}", code=1) from None
    print("\n".join(report(steps, env, dry_run)))
    print("\n".join(f"next: {line}" for line in boot.next_steps()))


@task(
    help={
        "env": CHANGE_ENV_HELP,
        "file": "a file holding the GitHub token alone; default: asked for without echo on a"
        " terminal (never pass the token itself as an argument: shell history keeps it)",
    }
)
def store_token(c, env="", file=""):
    """Setup: store the GitHub token as the foundation's Pulumi secret, before the deploy."""
    _require_env("store-token", env)
    import getpass

    from toolbox.bootstrap import read_token
    from toolbox.bootstrap import store_token as run_store_token

    if file:
        token = read_token(Path(file))
    elif _terminal():
        token = getpass.getpass("GitHub token (not shown): ")
    else:
        raise PlatformError("store-token: no terminal to ask on: pass --file PATH")
    print(run_store_token(env, token))


@task(
    help={
        "base": "the commit to compare with (default: as ./dev affected picks it, where this"
        " branch forked from origin/main, else main, else HEAD~1); one that names no commit"
        " (none, 000...0) compares with nothing: every resource is added",
        "env": "environment to plan on both sides; default: dev",
        "all_envs": "every environment platform.yaml defines; default: only --env",
        "json": "print the diff as JSON, with the gate (for CI); default: text",
        "markdown": "print the diff as Markdown for a job summary; default: text",
        "outputs_file": 'append gate=<true|false> to this file (CI: "$GITHUB_OUTPUT");'
        " default: none",
        "summary_file": 'append the diff as Markdown to this file (CI: "$GITHUB_STEP_SUMMARY");'
        " default: none",
    }
)
# invoke makes each parameter an option: they are never passed by position.
def diff(  # noqa: PLR0917
    c,
    base="",
    env="dev",
    all_envs=False,
    json_=False,
    markdown=False,
    outputs_file="",
    summary_file="",
):
    """Offline: the plan diff from a base commit to the work tree, and the review gate."""
    from toolbox.affected import append_outputs
    from toolbox.diff import diff as plan_diff
    from toolbox.diff import github_outputs, selected_environments

    result = plan_diff(base or None, selected_environments(env, all_envs=all_envs))
    if outputs_file:
        append_outputs(Path(outputs_file), github_outputs(result))
    if summary_file:
        with Path(summary_file).open("a", encoding="utf-8") as summary:
            summary.write(result.markdown())
    if json_:
        print(json.dumps(result.as_dict(), indent=2))
    elif markdown:
        print(result.markdown(), end="")
    else:
        print("\n".join(result.lines()))


# -- the program ``./dev`` runs ----------------------------------------------------------------


class Menu(Program):
    """invoke's Program over this menu: no task lists the tasks, and a line invoke's parser
    refuses (an unknown flag or task) reads ``error: ...`` like every other failure."""

    def parse_core_args(self) -> None:
        try:
            super().parse_core_args()
        except ParseError as exc:
            raise ParseError(f"error: {exc}") from None

    def parse_tasks(self) -> None:
        try:
            super().parse_tasks()
        except ParseError as exc:
            raise ParseError(f"error: {exc}") from None
        # invoke gives a task's positional parameter any word, even --help
        # (`./dev publish-source --help`): that word asks for the task's help.
        for context in self.tasks:
            if any(arg.value in ("-h", "--help") for arg in context.positional_args):
                self.args.help.value = context.name

    def no_tasks_given(self) -> None:
        self.list_tasks()
        raise Exit


def menu() -> Menu:
    """The program ``./dev`` runs, over this module's tasks."""
    return Menu(namespace=Collection.from_module(sys.modules[__name__]), binary="./dev")


if __name__ == "__main__":
    menu().run()
