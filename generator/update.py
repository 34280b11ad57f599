"""Update a project to a newer template version: copier update in a staged clone, judged before it lands.

The project's last commit is cloned (`git clone --shared`: its objects are borrowed, not copied) into a
temporary folder and copier updates the clone. pipeproof then reads what changed: conflicts (inline markers,
.rej files, unmerged index entries, new template files that clash with the user's, removed template files
that hold the user's edits), answers that changed without being asked, controls that passed and now fail, and
pins that moved. Only then do the changed files move into the project, all at once (transaction.py); an
update that is refused writes nothing.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from generator import answers_file, git, releases, render, transaction
from generator import source as sources
from generator.answers_file import Recorded
from generator.errors import UserError, show
from generator.source import Source

if TYPE_CHECKING:
    from generator.validate import Finding

# Statuses in which a control no longer protects anything.
BROKEN = {"fail", "error", "skipped"}
ADOPT_MIN_SHARE = 0.5  # of the template's files identical to a release's render, to adopt the project as it


@dataclass(frozen=True)
class Conflict:
    """A file the update could not merge by itself, and what resolves it."""

    path: str
    kind: str  # markers, unmerged, rej, clash, removed-edited
    how: str


@dataclass(frozen=True)
class AnswerChange:
    """An answer the new template version records differently."""

    key: str
    old: Any
    new: Any
    renamed_to: str | None = None

    @property
    def silent(self) -> bool:
        """The value changed or went away although nobody asked: a possible weakening."""
        return self.renamed_to is None and self.old is not None

    def __str__(self) -> str:
        if self.renamed_to:
            return f"{self.key} -> {self.renamed_to}: {show(self.old)} kept"
        if self.old is None:
            return f"{self.key}: new question, answered {show(self.new)} (its default)"
        if self.new is None:
            return f"{self.key}: {show(self.old)} is no longer recorded by the new template version"
        return f"{self.key}: {show(self.old)} -> {show(self.new)}"


@dataclass(frozen=True)
class ControlChange:
    id: str
    before: str
    after: str
    reason: str = ""  # the audit's reason for the status after

    @property
    def weakened(self) -> bool:
        return self.before == "pass" and self.after in BROKEN


@dataclass(frozen=True)
class Unmerged:
    """One stage of an unmerged index entry, replayed into the project's index so git sees the conflict."""

    path: str
    mode: str
    stage: int
    content: bytes


@dataclass
class Update:
    """What an update would do to a project, computed in a staged clone."""

    project: Path  # where the answers file is
    top: Path  # the git work tree's top level
    prefix: Path  # project relative to top (Path(".") unless the project is a subfolder)
    answers_file: str
    url: str
    old: str | None
    new: str | None
    notes: list[str] = field(default_factory=list)
    changes: dict[str, str] = field(default_factory=dict)  # path (from top) -> added / modified / deleted
    writes: list[transaction.Write] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    unmerged: list[Unmerged] = field(default_factory=list)
    diff: str = ""
    conflicts: list[Conflict] = field(default_factory=list)
    answers: list[AnswerChange] = field(default_factory=list)
    pins: list[tuple[str, str, str]] = field(default_factory=list)  # name, old, new
    controls: list[ControlChange] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # in the files the update touched
    validate_error: str | None = None

    @property
    def weakened(self) -> list[ControlChange]:
        return [c for c in self.controls if c.weakened]

    @property
    def silent_answers(self) -> list[AnswerChange]:
        return [a for a in self.answers if a.silent]


# ------------------------------------------------------------------------------------------ the origin


@dataclass(frozen=True)
class Origin:
    """Where the project's template comes from and which version it is on."""

    source: Source
    old: str | None  # the recorded version, None when it must be adopted
    adopt: str | None  # why the recorded version cannot be used (then adopt() finds it)


def _is_local(url: str) -> bool:
    return not re.match(r"^(\w[\w+.-]*://|git@|gh:|gl:)", url)


def _usable_local(url: str) -> bool:
    """A local template path copier can clone: a git work tree's root or a bundle."""
    path = Path(url).expanduser()
    if path.is_file():
        return True
    try:
        return path.is_dir() and Path(git.run(path, "rev-parse", "--show-toplevel")).resolve() == path.resolve()
    except git.GitError:
        return False


@contextmanager
def origin(recorded: Recorded, src: str | None = None) -> Iterator[Origin]:
    """The template to update from: `src` if given, else the recorded `_src_path`, else (for renders of
    pipeproof wheels before 0.2, which recorded a site-packages path and no commit) pipeproof's own releases."""
    url = src or recorded.src
    if url is None or (recorded.commit is None and (sources.is_canonical(url) or _is_local(url))):
        why = f"{recorded.name} records no template commit (_commit): rendered by a pipeproof wheel before 0.2?"
    elif _is_local(url) and not _usable_local(url) and src is None:
        why = f"{recorded.name} records _src_path {url!r}, which is not a template repository on this machine"
    else:
        why = None
    if why is not None:
        with sources.own() as own:
            yield Origin(own, None, why)
        return
    assert url is not None
    with sources.recorded(url) as found:
        old = recorded.commit
        if found.canonical and old not in found.tags:
            yield Origin(found, None, f"{recorded.name} records _commit {old!r}, which is not a pipeproof release")
            return
        yield Origin(found, old, None)


def adopt(root: Path, recorded: Recorded, source: Source, work: Path) -> tuple[str, str]:
    """The release whose render with the recorded answers matches the project best: (tag, explanation).

    pipeproof wheels before 0.2 recorded no commit; their trees match the render of the release they came from.
    """
    best: tuple[float, str, int, int] | None = None
    candidates = list(source.tags)
    known = recorded.version
    if known is not None:  # closest at or below the recorded version first
        candidates.sort(key=lambda t: (releases.parse(t) or known) > known)
    for tag in candidates:
        out = work / f"adopt-{tag}"
        try:
            render.render(source, out, recorded.answers, answers_file=recorded.name, ref=tag)
        except Exception:  # an old release may refuse today's answers: it is then not the one
            continue
        files = [p for p in out.rglob("*") if p.is_file() and p.name != recorded.name]
        same = sum(1 for p in files if _same_file(p, root / p.relative_to(out)))
        share = same / len(files) if files else 0.0
        if best is None or share > best[0]:
            best = (share, tag, same, len(files))
        if share == 1.0:
            break
    if best is None or best[0] < ADOPT_MIN_SHARE:
        found = f"; the closest is {best[1]} with {best[2]} of {best[3]} files identical" if best else ""
        raise UserError(
            f"cannot tell which pipeproof release rendered {root}{found}. Pass --src with the template it came "
            "from (a path or URL), or retrofit it"
        )
    share, tag, same, total = best
    return tag, f"adopted as {tag}: {same} of {total} template files are identical to its render"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return b.is_file() and not b.is_symlink() and a.read_bytes() == b.read_bytes()
    except OSError:
        return False


# ------------------------------------------------------------------------------------------ prepare


def locate(path: Path) -> tuple[Path, Path, Recorded]:
    """The project folder, its git top level and its answers; UserError when it is not an updatable project."""
    project = path.absolute()
    top = git.work_tree(project)
    recorded = answers_file.find(project)
    if recorded is None:
        raise UserError(
            f"{project} has no pipeproof answers file ({' or '.join(answers_file.NAMES)}): render it with "
            "`pipeproof new`, or add pipeproof to it with `pipeproof retrofit`"
        )
    answers_file.check_version(recorded)
    return project, top, recorded


def prepare(
    path: Path,
    *,
    to: str | None = None,
    data: Mapping[str, Any] | None = None,
    src: str | None = None,
) -> Update:
    """Everything `update` would change, computed in a staged clone; the project is only read."""
    project, top, recorded = locate(path)
    pending = git.dirty(top)
    if pending:
        shown = ", ".join(line[3:] for line in pending[:3]) + (" ..." if len(pending) > 3 else "")
        raise UserError(
            f"{top} has uncommitted changes ({shown}): commit or stash them first, so that `git diff` shows "
            "exactly what the update changed and `git checkout .` undoes it"
        )
    head = git.head(top)
    if head is None:
        raise UserError(f"{top} has no commit yet: commit the rendered files first")
    data = dict(data or {})
    with tempfile.TemporaryDirectory(prefix="pipeproof-update-") as tmp, origin(recorded, src) as found:
        work = Path(tmp)
        clone = work / "project"
        git.run(work, "clone", "--quiet", "--shared", "--no-checkout", str(top), str(clone))
        git.run(clone, "-c", "core.hooksPath=/dev/null", "checkout", "--quiet", "--detach", head)
        prefix = project.resolve().relative_to(top)
        staged = clone / prefix
        old, notes = found.old, []
        if found.adopt is not None:
            old, how = adopt(staged, recorded, found.source, work)
            notes += [found.adopt, how]
        target = found.source.resolve(to) if to else found.source.ref or found.source.newest()
        result = Update(project, top, prefix, recorded.name, found.source.url, old, target, notes)
        if old == target and not data and found.source.url == recorded.src:
            return result  # already there: nothing to render
        if old != recorded.commit or found.source.url != recorded.src:
            # Point the staged answers at the template and version copier must re-render as the old one.
            staged_answers = {**recorded.data, "_src_path": found.source.url, "_commit": old}
            _commit_file(clone, staged / recorded.name, staged_answers)
        before = {cid: status for cid, (status, _) in _audit(staged).items()}
        _run_copier(found.source, staged, target, recorded.name, data)
        _collect(result, clone, head, work)
        _find_conflicts(result, clone, head, found.source, old, recorded, work)
        result.pins = _pin_changes(result, clone, head)
        result.answers = _answer_changes(recorded.answers, _staged_answers(staged / recorded.name), set(data))
        if not result.conflicts and result.changes:
            result.controls = [
                ControlChange(cid, before.get(cid, "absent"), status, reason)
                for cid, (status, reason) in _audit(staged).items()
                if before.get(cid, "absent") != status
            ]
            _validate(result, staged)
    return result


def _commit_file(clone: Path, path: Path, data: Mapping[str, Any]) -> None:
    header = "".join(line + "\n" for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#"))
    path.write_text(header + yaml.safe_dump(dict(data), sort_keys=True, allow_unicode=True), encoding="utf-8")
    rel = path.relative_to(clone).as_posix()
    git.run(clone, "add", "--", rel)
    git.run(
        clone,
        "-c",
        "commit.gpgsign=false",
        "commit",
        "--quiet",
        "--no-verify",
        "-m",
        "pipeproof: the template version to update from",
        env=git.IDENTITY,
    )


def _run_copier(src: Source, staged: Path, target: str | None, name: str, data: Mapping[str, Any]) -> None:
    from copier.errors import CopierError, UnsafeTemplateError

    try:
        render.update(src, staged, ref=target, answers_file=name, data=data)
    except UnsafeTemplateError:
        raise UserError(
            f"the template {src.url} runs tasks or migrations, which need copier's --trust; pipeproof never runs "
            "template code: ask its authors for default shims instead (see the README)"
        ) from None
    except (CopierError, ValueError) as exc:  # ValueError: an unknown --to ref, an answer its validator refuses
        raise UserError(f"copier could not update from {src.url} to {target}: {exc}") from None


def _audit(root: Path) -> dict[str, tuple[str, str]]:
    """Each control's audit status and reason."""
    from generator.audit import audit

    return {r.control.id: (r.status, getattr(r, "reason", "")) for r in audit(root).results}


def _staged_answers(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return {k: v for k, v in (data or {}).items() if not str(k).startswith("_")}


def _collect(result: Update, clone: Path, head: str, work: Path) -> None:
    """Files the update added, changed and removed (against the project's last commit), and the diff."""
    env = {"GIT_INDEX_FILE": str(work / "compare.index")}
    git.run(clone, "read-tree", head, env=env)
    git.run(clone, "add", "--all", "--force", env=env)
    kinds = {"A": "added", "M": "modified", "D": "deleted", "T": "modified"}
    listing = git.run(clone, "diff", "--cached", "--no-renames", "--name-status", "-z", head, env=env)
    parts = listing.split("\0")
    for status, rel in zip(parts[::2], parts[1::2], strict=False):
        if status:
            result.changes[rel] = kinds.get(status[0], "modified")
    result.diff = git.run(clone, "diff", "--cached", "--no-renames", "--no-color", head, env=env)
    for rel, kind in result.changes.items():
        if kind == "deleted":
            result.deletes.append(rel)
        else:
            result.writes.append(transaction.Write.from_file(clone / rel, rel))
    for line in git.run(clone, "ls-files", "--unmerged", "-z").split("\0"):
        if line:
            info, rel = line.split("\t", 1)
            mode, sha, stage = info.split()
            blob = git.run_bytes(clone, "cat-file", "blob", sha)
            result.unmerged.append(Unmerged(rel, mode, int(stage), blob))


_MARKERS = (re.compile(rb"^<{7} ", re.MULTILINE), re.compile(rb"^>{7} ", re.MULTILINE))


def _find_conflicts(
    result: Update, clone: Path, head: str, src: Source, old: str | None, recorded: Recorded, work: Path
) -> None:
    unmerged = {u.path for u in result.unmerged}
    edit = "edit {0}: keep the right lines between <<<<<<< and >>>>>>>, delete the markers, then `git add {0}`"
    for write in list(result.writes):
        rel = write.path
        if rel.endswith(".rej"):
            base = rel.removesuffix(".rej")
            how = f"apply the hunks of {rel} to {base} by hand, then `rm {rel}` and `git add {base}`"
            result.conflicts.append(Conflict(base, "rej", how))
        elif rel in unmerged or all(m.search(write.data) for m in _MARKERS):
            result.conflicts.append(Conflict(rel, "unmerged" if rel in unmerged else "markers", edit.format(rel)))
        elif result.changes[rel] == "added" and (result.top / rel).exists():
            # A file git ignores in the project (it was clean), which the template now renders too.
            proposal = f"{rel}.pipeproof-new"
            result.writes.remove(write)
            result.writes.append(transaction.Write(proposal, write.data, write.mode))
            how = f"yours is kept; the template's is {proposal}: merge what you need, then delete {proposal}"
            result.conflicts.append(Conflict(rel, "clash", how))
    if result.deletes:
        _keep_edited_removals(result, clone, head, src, old, recorded, work)


def _keep_edited_removals(
    result: Update, clone: Path, head: str, src: Source, old: str | None, recorded: Recorded, work: Path
) -> None:
    """copier deletes a file the new version no longer renders even when the user edited it: keep those."""
    out = work / "old-render"
    try:
        render.render(src, out, recorded.answers, answers_file=recorded.name, ref=old)
    except Exception:  # the old render is out of reach: keep every removed file rather than lose edits
        shutil.rmtree(out, ignore_errors=True)
    added = [w.path for w in result.writes if result.changes.get(w.path) == "added"]
    for rel in list(result.deletes):
        rendered = out / Path(rel).relative_to(result.prefix)
        if rendered.is_file() and rendered.read_bytes() == git.run_bytes(clone, "show", f"{head}:{rel}"):
            continue
        result.deletes.remove(rel)
        result.changes.pop(rel)
        hint = f" (new in this version: {', '.join(added[:3])})" if added else ""
        how = (
            "the new version no longer renders it; your edits are kept: move them where they belong"
            f"{hint}, then `git rm {rel}`"
        )
        result.conflicts.append(Conflict(rel, "removed-edited", how))


def _answer_changes(old: Mapping[str, Any], new: Mapping[str, Any], asked: set[str]) -> list[AnswerChange]:
    """Answers that changed between the recorded and the updated answers file, renames recognised by value."""
    changes = []
    appeared = {k: v for k, v in new.items() if k not in old}
    for key, value in old.items():
        if key in asked:
            continue
        if key not in new:
            renamed = next((k for k, v in appeared.items() if v == value), None)
            if renamed is not None:
                appeared.pop(renamed)
            changes.append(AnswerChange(key, value, None if renamed is None else value, renamed))
        elif new[key] != value:
            changes.append(AnswerChange(key, value, new[key]))
    changes += [AnswerChange(k, None, v) for k, v in appeared.items() if k not in asked]
    return changes


_USES = re.compile(r"uses:\s*['\"]?([^@\s'\"]+)@([0-9a-f]{40})['\"]?\s*#\s*(\S+)")
_REPO = re.compile(r"repo:\s*['\"]?(\S+?)['\"]?\s*$")
_REV = re.compile(r"rev:\s*['\"]?([0-9a-f]{40})['\"]?\s*#\s*(\S+)")


def pins(text: str) -> dict[str, str]:
    """Pinned actions and pre-commit hooks in a file: name -> the version its comment names."""
    found, repo = {}, None
    for line in text.splitlines():
        if m := _USES.search(line):
            found[m[1]] = m[3]
        elif m := _REPO.search(line):
            repo = m[1]
        elif (m := _REV.search(line)) and repo:
            found[repo] = m[2]
    return found


def _pin_changes(result: Update, clone: Path, head: str) -> list[tuple[str, str, str]]:
    moved: dict[str, tuple[str, str]] = {}
    for write in result.writes:
        if result.changes.get(write.path) != "modified":
            continue
        before = pins(git.run(clone, "show", f"{head}:{write.path}"))
        for name, version in pins(write.data.decode("utf-8", "replace")).items():
            if name in before and before[name] != version:
                moved[name] = (before[name], version)
    return [(name, old, new) for name, (old, new) in sorted(moved.items())]


def _validate(result: Update, staged: Path) -> None:
    from generator import validate

    touched = {
        Path(rel).relative_to(result.prefix).as_posix()
        for rel, kind in result.changes.items()
        if kind != "deleted" and Path(rel).is_relative_to(result.prefix)
    }
    try:
        findings = validate.run(staged, only=touched)
    except UserError as exc:
        result.validate_error = str(exc)
        return
    result.findings = [f for f in findings if f.path in touched or f.path == "."]


# ------------------------------------------------------------------------------------------ apply


def apply(update: Update, *, step: Callable[[str], None] | None = None) -> None:
    """Move the update's files into the project, all or nothing, and record its conflicts in git's index (so
    `git commit` refuses until they are resolved)."""
    transaction.apply(update.top, update.writes, update.deletes, step=step)
    if not update.unmerged:
        return
    lines = [f"0 {'0' * 40}\t{path}" for path in sorted({u.path for u in update.unmerged})]
    for entry in update.unmerged:
        sha = git.run_bytes(update.top, "hash-object", "-w", "--stdin", input=entry.content).decode().strip()
        lines.append(f"{entry.mode} {sha} {entry.stage}\t{entry.path}")
    git.run_bytes(update.top, "update-index", "--index-info", input=("\n".join(lines) + "\n").encode())
