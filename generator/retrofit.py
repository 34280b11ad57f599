"""Add pipeproof to an existing repository without losing a byte.

The template is rendered into a temporary folder with the confirmed answers, then every rendered file is
planned against the repository: add it (absent), keep it (identical), merge it (pre-commit hooks, CODEOWNERS
rules, .gitignore lines: appended as text, see merge.py) or propose it (written beside the original as
`<path>.pipeproof-proposal`, the original untouched, listed as needing a decision). The audit, run on the
repository as it is and on the repository as the plan leaves it, finds the existing CI jobs that already cover
a control and the coverage before and after. The plan is applied all at once (transaction.py).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator import answers_file, git, merge, render, transaction
from generator.errors import UserError
from generator.source import Source

PROPOSAL = ".pipeproof-proposal"
# GitHub reads the first CODEOWNERS of these that exists: pipeproof's rules go into that one.
CODEOWNERS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")
MERGED = {".pre-commit-config.yaml": "hooks", ".gitignore": "lines", "CODEOWNERS": "rules"}
# Other CI systems keep running beside the GitHub workflows pipeproof adds.
OTHER_CI = {
    ".gitlab-ci.yml": "GitLab CI",
    "Jenkinsfile": "Jenkins",
    ".circleci/config.yml": "CircleCI",
    "azure-pipelines.yml": "Azure Pipelines",
    "bitbucket-pipelines.yml": "Bitbucket Pipelines",
    ".travis.yml": "Travis CI",
}


@dataclass(frozen=True)
class Step:
    """What happens to one rendered file."""

    action: str  # add, merge, propose, keep
    path: str  # the file written (for a proposal, the proposal) or kept
    source: str  # the template file it comes from
    note: str = ""


@dataclass
class Plan:
    root: Path
    answers: dict[str, Any]
    answers_file: str
    steps: list[Step] = field(default_factory=list)
    writes: list[transaction.Write] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    covered: list[str] = field(default_factory=list)  # existing CI jobs that already cover controls
    remaining: list[str] = field(default_factory=list)  # controls that still fail after, and why
    before: dict[str, str] = field(default_factory=dict)  # control id -> audit status
    after: dict[str, str] = field(default_factory=dict)

    @property
    def merged(self) -> list[str]:
        return [s.path for s in self.steps if s.action == "merge"]


def repository(path: Path) -> tuple[Path, str]:
    """The repository's top level and the answers file pipeproof will write; UserError when retrofit cannot
    run there (not a git work tree, a subfolder, already pipeproof's, answers from a newer template)."""
    top = git.work_tree(path)
    if top != path.resolve():
        raise UserError(
            f"PATH {str(path)!r} is inside the git repository {top}: retrofit works on the top level, where "
            "GitHub reads .github/"
        )
    existing = answers_file.find(top)
    if existing is not None:
        answers_file.check_version(existing)
        raise UserError(
            f"{top} already has pipeproof's answers ({existing.name}): bring it up to date with `pipeproof update`"
        )
    return top, (answers_file.OWN if answers_file.foreign(top) else answers_file.COPIER)


def _audit_results(root: Path) -> tuple[list[Any], dict[Any, Any]]:
    """The audit of root, and what it learnt about the files that the audit of the overlay can reuse."""
    from generator.audit import audit
    from generator.controls.scan import SUPPRESSION_LINES

    return list(audit(root).results), SUPPRESSION_LINES


@contextmanager
def _beside(job: Callable[[Path], Any], root: Path) -> Iterator[Callable[[], Any]]:
    """Run job(root) in a forked process while the block runs; yields the call that returns its result. Where
    fork is not available it runs in this process."""
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        results = job(root)
        yield lambda: results
        return
    with multiprocessing.get_context("fork").Pool(1) as pool:
        pending = pool.apply_async(job, (root,))
        yield lambda: pending.get()


def plan(root: Path, answers: Mapping[str, Any], name: str, src: Source, work: Path) -> Plan:
    """What retrofit would write, computed in `work` (a temporary folder); the repository is only read."""
    result = Plan(root, dict(answers), name)
    out = work / "render"
    # The repository as it is is audited in a second process while copier renders: two cores, half the wait.
    with _beside(_audit_results, root) as audited:
        render.render(src, out, answers, answers_file=name)
        before, learnt = audited()
    from generator.controls.scan import SUPPRESSION_LINES

    SUPPRESSION_LINES.update(learnt)
    rendered = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    for rel in rendered:
        _plan_file(result, rel, out / rel)
    added = (
        "the GitLab pipeline proposed here"
        if answers.get("platform") == "gitlab"
        else "the GitHub workflows added here"
    )
    for rel, system in OTHER_CI.items():
        if (root / rel).is_file() and rel not in rendered:
            result.decisions.append(
                f"{rel}: {system} keeps running its own pipeline beside {added}; decide "
                "which one gates merges and remove the duplicate checks from the other"
            )
    result.before = {r.control.id: r.status for r in before}
    _existing_ci(result, before, set(rendered))
    from generator.audit import audit

    with _overlay(root, result.writes, work / "after") as after:
        report = audit(after, follow_links=True).results
    result.after = {r.control.id: r.status for r in report}
    result.remaining = [
        f"{r.control.id}: {getattr(r, 'reason', '')} ({', '.join(getattr(r, 'evidence', ())) or 'no file'})"
        for r in report
        if r.status in {"fail", "error"}
    ]
    return result


def _plan_file(result: Plan, rel: str, rendered: Path) -> None:
    root = result.root
    data = rendered.read_bytes()
    mode = stat.S_IMODE(rendered.stat().st_mode)
    target = rel
    if rel == CODEOWNERS[0]:  # merge into the CODEOWNERS GitHub reads, never shadow it with a new one
        target = next((c for c in CODEOWNERS if (root / c).exists() or (root / c).is_symlink()), rel)
    path = root / target
    link = _symlink(root, target)
    if not path.exists() and not path.is_symlink():
        result.steps.append(Step("add", target, rel))
        result.writes.append(transaction.Write(target, data, mode))
        return
    if link is None and path.is_file():
        try:
            existing = path.read_bytes()
        except OSError as exc:
            raise UserError(
                f"{target}: cannot read it ({exc.strerror}); retrofit compares every file it would touch"
            ) from None
        if existing == data:
            result.steps.append(Step("keep", target, rel, "identical"))
            return
        kind = MERGED.get(Path(target).name)
        if kind is not None:
            try:
                merged = (merge.precommit if kind == "hooks" else merge.lines)(existing, data, target)
            except merge.MergeError as exc:
                _propose(result, target, rel, data, mode, f"not merged: {exc}")
                return
            if merged is None:
                result.steps.append(Step("keep", target, rel, f"already has pipeproof's {kind}"))
                return
            content, added = merged
            shown = ", ".join(added) if len(added) <= 3 else f"{', '.join(added[:3])} ..."
            result.steps.append(Step("merge", target, rel, f"+ {len(added)} {kind}: {shown}"))
            result.writes.append(transaction.Write(target, content, stat.S_IMODE(path.stat().st_mode)))
            return
    why = "a symlink: never written through" if link else "a folder" if path.is_dir() else "yours differs"
    _propose(result, target, rel, data, mode, why)


def _propose(result: Plan, target: str, rel: str, data: bytes, mode: int, why: str) -> None:
    proposal = target + PROPOSAL
    if (result.root / proposal).exists() or (result.root / proposal).is_symlink():
        raise UserError(f"{proposal} already exists (an earlier retrofit?): delete or rename it first")
    result.steps.append(Step("propose", proposal, rel, why))
    result.writes.append(transaction.Write(proposal, data, mode))
    result.decisions.append(
        f"{target}: yours is kept ({why}); pipeproof's version is {proposal}: merge what you need into "
        f"{target}, then delete {proposal}"
    )


def _symlink(root: Path, rel: str) -> Path | None:
    """The symlink on the way to rel, if any; UserError when it points outside the repository, or when a
    folder on the way is one (pipeproof never writes through a symlink)."""
    current = root
    parts = Path(rel).parts
    for i, part in enumerate(parts):
        current = current / part
        if not current.is_symlink():
            continue
        where = current.relative_to(root).as_posix()
        resolved = current.resolve()
        if not resolved.is_relative_to(root.resolve()):
            raise UserError(
                f"{where} is a symlink to {os.readlink(current)}, outside the repository; pipeproof never writes "
                "through it: replace it with a real file or folder, or remove it"
            )
        if i < len(parts) - 1:
            raise UserError(f"{where} is a symlinked folder; pipeproof never writes through a symlink")
        return current
    return None


def _existing_ci(result: Plan, results: list[Any], rendered: set[str]) -> None:
    """Controls the repository's own workflows already pass, with the job that does it (from the audit's
    evidence), so a duplicate is never added silently."""
    by_job: dict[str, list[str]] = {}
    for r in results:
        if r.status != "pass":
            continue
        for evidence in getattr(r, "evidence", ()):
            path, _, line = str(evidence).partition(":")
            job = _job_at(result.root / path, int(line or 0)) if path.startswith(".github/workflows/") else None
            if job is not None and path not in rendered:
                found = by_job.setdefault(f"{path} job `{job}`", [])
                if r.control.id not in found:
                    found.append(r.control.id)
    for where, ids in sorted(by_job.items()):
        result.covered.append(f"{where}: {', '.join(ids)}")
    if by_job:
        ids = sorted({i for found in by_job.values() for i in found})
        result.decisions.append(
            f"your workflows already cover {', '.join(ids)}; the added .github/workflows/ run the same controls: "
            "keep one job per control (the list above names yours)"
        )


def _job_at(path: Path, line: int) -> str | None:
    """The job of a workflow that holds a line (the last job key before it); None above the jobs."""
    from generator.repo import ParseError, load_yaml

    try:
        data = load_yaml(path)
    except (ParseError, OSError):
        return None
    jobs = data.get("jobs") if isinstance(data, dict) else None
    found = [(at, str(name)) for name, at in getattr(jobs, "key_lines", {}).items() if at <= line]
    return max(found)[1] if found else None


@contextmanager
def _overlay(root: Path, writes: list[transaction.Write], dest: Path) -> Iterator[Path]:
    """The repository as the plan would leave it, without copying it: folders the plan writes into are made
    for real, everything else is a symlink to the original."""
    planned = {w.path: w for w in writes}
    folders = {p.as_posix() for w in writes for p in Path(w.path).parents if p != Path(".")}

    def mirror(rel: str) -> None:
        here = dest / rel if rel else dest
        here.mkdir(parents=True, exist_ok=True)
        source = root / rel if rel else root
        for entry in os.scandir(source):
            sub = f"{rel}/{entry.name}" if rel else entry.name
            if sub == ".git" or sub in planned:
                continue
            if sub in folders and entry.is_dir(follow_symlinks=False):
                mirror(sub)
            else:
                (dest / sub).symlink_to(entry.path)

    mirror("")
    for write in writes:
        target = dest / write.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(write.data)
    yield dest


def apply(result: Plan, *, step: Callable[[str], None] | None = None) -> None:
    """Write the plan into the repository, all or nothing."""
    transaction.apply(result.root, result.writes, step=step)


@contextmanager
def workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pipeproof-retrofit-") as tmp:
        yield Path(tmp)
