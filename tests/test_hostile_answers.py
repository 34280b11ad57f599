"""Hostile answers to every free-text question are either refused or rendered inert.

For each free-text question of copier.yml (type str, no choices), a hostile value given as `--data KEY=VALUE`
must end one of two ways:

(a) refused: exit 2, stderr names the key (`'key'`) on one line without a traceback, and nothing is written
    (no DEST, no staging folder left next to it); or
(b) inert: exit 0, and every rendered file parses (YAML, JSON, TOML, .zap/rules.tsv, CODEOWNERS) to the same
    structure as a render of the same scenario with the question's own valid value (the placeholder): the same
    files, mapping keys, list lengths, scalar types, job ids and step names, and every string equal to the
    placeholder render's string with some occurrences of the placeholder replaced by the value. Plain-text files
    keep their lines the same way. The value never appears in a workflow or action `run:` script: answers reach
    shells only through `env:`.

The questions, the scenarios in which each one is asked (golden/scenarios.yml) and the placeholders (the
scenario's resolved answer) come from the template, not from a list in this file.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from generator import answers as answers_mod
from generator.cli import main
from generator.errors import UserError
from tests.helpers import ROOT, SCENARIOS, mask, template, tree_files

# --- what the template asks ------------------------------------------------------------------------------

TEMPLATE = template()
FREE_TEXT: tuple[str, ...] = tuple(q.key for q in TEMPLATE.questions if q.type == "str" and not q.choices)
MULTISELECT: tuple[str, ...] = tuple(q.key for q in TEMPLATE.questions if q.multiselect)
EXPECTED_FREE_TEXT = {
    "project_name",
    "security_team",
    "staging_url",
    "production_url",
    "default_branch",
    "evidence_bucket",
    "evidence_role",
    "evidence_region",
}

# A value the validators accept but YAML would type (project_name `null` or `yes`, default_branch `123` or
# `2024-01-01`, evidence_bucket `true`) must stay a string: the templates quote answers with `tojson`. Were
# that to regress, set this to False to mark the typed cases as the known bug again.
YAML_RETYPING_FIXED = True


def _scenario_args(name: str) -> list[str]:
    """A golden scenario's answers as --data items (lists in YAML flow form, as the CLI documents)."""
    args: list[str] = []
    for key, value in SCENARIOS[name]["answers"].items():
        if isinstance(value, list):
            text = "[" + ", ".join(map(str, value)) + "]"
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        args += ["--data", f"{key}={text}"]
    return args


def _resolved(name: str) -> dict[str, Any]:
    # DEST is named after the scenario, as in golden/, so project_name defaults to the scenario name.
    return answers_mod.resolve(TEMPLATE, SCENARIOS[name]["answers"], Path("/nonexistent") / name)


RESOLVED = {name: _resolved(name) for name in SCENARIOS}
# (key, scenario) for every scenario in which the key is asked; the placeholder is the key's answer there.
# evidence_bucket, evidence_role and evidence_region are asked only when evidence_store != none:
# the scenarios supply those answers (python-defaults: aws, node-terraform-public: gcp, go-kubernetes-azure:
# azure, each with answers valid for that store).
CASES: tuple[tuple[str, str], ...] = tuple(
    (key, name) for key in FREE_TEXT for name in SCENARIOS if key in RESOLVED[name]
)
PLACEHOLDER: dict[tuple[str, str], str] = {(key, name): RESOLVED[name][key] for key, name in CASES}
FIRST_SCENARIO: dict[str, str] = {}
for _key, _name in CASES:
    FIRST_SCENARIO.setdefault(_key, _name)

# --- hostile values --------------------------------------------------------------------------------------

FRAGMENTS: dict[str, str] = {
    "single-quote": "'",
    "double-quote": '"',
    "expression": "${{ github.event.issue.title }}",
    "command-substitution": "$(id)",
    "backticks": "`id`",
    "newline": "\nname: injected",
    "crlf": "\r\ninjected: true",
    "colon-space": ": injected",
    "space-hash": " #injected",
    "anchor": "&anchor",
    "alias": "*alias",
    "python-tag": "!!python/object/apply:os.system ['id']",
    "flow-mapping": "{a: b}",
    "block-list": "\n- injected",
    "document-marker": "\n---\ninjected: true",
    "jinja": "[[ 7 * 7 ]][% raw %]",
    "line-separator": "x\u2028injected: true",
    "paragraph-separator": "x\u2029injected: true",
    "next-line": "x\u0085injected: true",
    "nul": "\x00",
    "tab": "\tinjected",
    "surrogate-escape": "\udcff",  # an undecodable byte in argv
    "long-400": "a" * 400,  # under MAX_TEXT: each validator's own length limit decides
    "long-5000": "a" * 5000,
    "long-100000": "b" * 100_000,
}
# Plain scalars YAML reads as something other than a string.
YAML_TYPED = ("null", "~", "true", "yes", "on", "0", "123", "1.5", "0x1f", "2024-01-01")
YAML_TYPED_EXPLICIT = ("null", "123")


def _yaml_retypes(value: str) -> bool:
    """Whether `value`, written as a plain YAML scalar, would not load as a string."""
    if not value:
        return False
    tag: str = yaml.resolver.Resolver().resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    return tag != "tag:yaml.org,2002:str"


def _accepted(key: str, scenario: str, value: str) -> bool:
    try:
        answers_mod.resolve(TEMPLATE, {**SCENARIOS[scenario]["answers"], key: value}, Path("/nonexistent") / scenario)
    except UserError:
        return False
    return True


# --- parsing and comparing rendered trees ----------------------------------------------------------------

ANSWERS_FILE = ".copier-answers.yml"  # written by copier with yaml.dump: compared by structure only


def parse_tree(root: Path) -> dict[str, dict[str, Any]]:
    """Every file of a rendered tree as {kind: parsed}: structured formats parsed, text files as lines."""
    mask(root)
    parsed: dict[str, dict[str, Any]] = {}
    for rel, path in tree_files(root).items():
        text = path.read_text(encoding="utf-8")
        name, suffix = PurePath(rel).name, PurePath(rel).suffix
        entry: dict[str, Any] = {"mode": path.stat().st_mode & 0o111}
        try:
            if suffix in {".yml", ".yaml"}:
                entry["yaml"] = list(yaml.safe_load_all(text))
            elif suffix == ".json":
                entry["json"] = json.loads(text)
            elif suffix == ".toml":
                entry["toml"] = tomllib.loads(text)
            elif suffix == ".tsv":
                entry["tsv"] = [line.split("\t") for line in text.split("\n") if not line.startswith("#")]
            elif name == "CODEOWNERS":
                entry["codeowners"] = [line.split() for line in text.split("\n") if line.strip()]
        except (yaml.YAMLError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise AssertionError(f"{rel} does not parse: {exc}") from None
        if rel != ANSWERS_FILE and suffix != ".json":
            # str.splitlines also breaks at U+2028, U+2029, U+0085, \v, \f...: a value may add none of them.
            entry["lines"] = text.splitlines()
        parsed[rel] = entry
    return parsed


def subst_match(base: str, got: str, placeholder: str, value: str) -> bool:
    """Whether `got` is `base` with some occurrences of `placeholder` replaced by `value` (no other change)."""
    parts = base.split(placeholder)
    positions = {0}
    for i, part in enumerate(parts):
        positions = {p + len(part) for p in positions if got.startswith(part, p)}
        if i < len(parts) - 1:
            positions = {p + len(placeholder) for p in positions if got.startswith(placeholder, p)} | {
                p + len(value) for p in positions if got.startswith(value, p)
            }
        if not positions:
            return False
    return len(got) in positions


def compare(base: Any, got: Any, placeholder: str, value: str, where: str) -> None:
    """Same structure and scalar types; strings may differ only where the placeholder stood."""
    if type(base) is not type(got):
        raise AssertionError(f"{where}: {type(base).__name__} {base!r:.80} became {type(got).__name__} {got!r:.80}")
    if isinstance(base, dict):
        if len(base) != len(got):
            raise AssertionError(f"{where}: keys {list(base)!r:.200} became {list(got)!r:.200}")
        for (bk, bv), (gk, gv) in zip(base.items(), got.items(), strict=True):
            compare(bk, gk, placeholder, value, f"{where} key {bk!r}")
            compare(bv, gv, placeholder, value, f"{where}.{bk}")
    elif isinstance(base, list):
        if len(base) != len(got):
            raise AssertionError(f"{where}: {len(base)} items became {len(got)}")
        for i, (b, g) in enumerate(zip(base, got, strict=True)):
            compare(b, g, placeholder, value, f"{where}[{i}]")
    elif isinstance(base, str):
        if not subst_match(base, got, placeholder, value):
            raise AssertionError(f"{where}: {base!r:.200} became {got!r:.200}")
    elif base != got:
        raise AssertionError(f"{where}: {base!r:.80} became {got!r:.80}")


def _walk_runs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "run" and isinstance(v, str):
                yield v
            else:
                yield from _walk_runs(v)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_runs(item)


def run_scripts(tree: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Every `run:` script of the workflows and local actions, by file."""
    return {
        rel: list(_walk_runs(entry["yaml"]))
        for rel, entry in tree.items()
        if "yaml" in entry and (rel.startswith(".github/workflows/") or rel.startswith(".github/actions/"))
    }


def jobs_and_steps(tree: dict[str, dict[str, Any]]) -> dict[str, dict[str, list[Any]]]:
    """Workflow job ids and their step names, by file."""
    out: dict[str, dict[str, list[Any]]] = {}
    for rel, entry in tree.items():
        if rel.startswith(".github/workflows/") and "yaml" in entry:
            jobs = (entry["yaml"][0] or {}).get("jobs") or {}
            out[rel] = {job: [s.get("name") for s in spec.get("steps") or []] for job, spec in jobs.items()}
    return out


class Baselines:
    """Scenario renders with every placeholder in place, rendered once per session, on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._trees: dict[str, dict[str, dict[str, Any]]] = {}

    def tree(self, scenario: str) -> dict[str, dict[str, Any]]:
        if scenario not in self._trees:
            dest = self.root / scenario / scenario
            code = main(["new", str(dest), "--defaults", *_scenario_args(scenario)])
            assert code == 0, f"scenario {scenario} does not render (exit {code})"
            self._trees[scenario] = parse_tree(dest)
        return self._trees[scenario]


@pytest.fixture(scope="session")
def baselines(tmp_path_factory: pytest.TempPathFactory) -> Baselines:
    return Baselines(tmp_path_factory.mktemp("baselines"))


# --- the contract ----------------------------------------------------------------------------------------


def assert_refused_or_inert(
    key: str, scenario: str, value: str, work: Path, capsys: pytest.CaptureFixture[str], baselines: Baselines
) -> str:
    """Run `pipeproof new` with the hostile answer; check (a) or (b). Returns 'refused' or 'rendered'."""
    dest = work / scenario
    shown = f"--data {key}={value!r:.200} ({len(value)} characters) in scenario {scenario}"
    capsys.readouterr()
    code = main(["new", str(dest), "--defaults", *_scenario_args(scenario), "--data", f"{key}={value}"])
    err = capsys.readouterr().err
    assert code in (0, 2), f"{shown}: exit {code}, stderr: {err[:2000]}"
    assert "Traceback" not in err, f"{shown}: {err[:2000]}"
    if code == 2:
        assert f"'{key}'" in err, f"{shown}: refused without naming {key!r}: {err[:2000]}"
        assert len(err.splitlines()) == 1, f"{shown}: the message spans lines: {err[:2000]!r}"
        assert len(err) < 2000, f"{shown}: the message echoes the value ({len(err)} characters)"
        assert not dest.exists(), f"{shown}: refused but DEST was created"
        assert list(work.iterdir()) == [], f"{shown}: refused but left {list(work.iterdir())}"
        return "refused"

    placeholder = PLACEHOLDER[key, scenario]
    base = baselines.tree(scenario)
    try:
        got = parse_tree(dest)
    except AssertionError as exc:
        raise AssertionError(f"{shown}: accepted, but {exc}") from None
    assert sorted(got) == sorted(base), f"{shown}: rendered files differ: {sorted(set(got) ^ set(base))}"
    for rel in base:
        try:
            assert sorted(got[rel]) == sorted(base[rel]), f"{rel}: parsed as {sorted(got[rel])}"
            for kind in base[rel]:
                compare(base[rel][kind], got[rel][kind], placeholder, value, f"{rel} ({kind})")
        except AssertionError as exc:
            raise AssertionError(
                f"{shown}: accepted, and the output changed shape (placeholder {placeholder!r}): {exc}"
            ) from None
    try:
        compare(jobs_and_steps(base), jobs_and_steps(got), placeholder, value, "jobs")
    except AssertionError as exc:
        raise AssertionError(f"{shown}: job ids or step names changed: {exc}") from None
    base_runs = [script for scripts in run_scripts(base).values() for script in scripts]
    if not any(value in script for script in base_runs):  # a trivial value ('a') may occur there anyway
        for rel, scripts in run_scripts(got).items():
            for script in scripts:
                assert value not in script, f"{shown}: the value reaches a run: script in {rel}:\n{script}"
    return "rendered"


# --- tests -----------------------------------------------------------------------------------------------


def test_free_text_questions_are_derived_from_the_template() -> None:
    assert set(FREE_TEXT) >= EXPECTED_FREE_TEXT, f"free-text questions derived: {FREE_TEXT}"
    asked = {key for key, _ in CASES}
    assert asked == set(FREE_TEXT), f"never asked in any golden scenario: {set(FREE_TEXT) - asked}"
    # The conditional questions are exercised under each evidence store that asks them.
    stores = {key: {RESOLVED[name].get("evidence_store") for k, name in CASES if k == key} for key in FREE_TEXT}
    assert {"aws", "gcp", "azure"} <= stores["evidence_bucket"]
    assert {"aws", "gcp", "azure"} <= stores["evidence_role"]
    assert stores["evidence_region"] == {"aws", "gcp", "azure"}
    assert {"iac", "frameworks"} <= set(MULTISELECT)


# Two default answers are also words of the rendered scripts themselves: github.com (the pinned Go module
# paths) and main (Go's `-X main.version` link flag). Their premise is checked where the answer is another
# value: the GHES scenario's host (github.bigcorp.example) and the trunk default branch (go-kubernetes-azure).
COMMON_WORDS = {("github_host", "github.com"), ("default_branch", "main")}
PREMISE_CASES = tuple(c for c in CASES if (c[0], PLACEHOLDER[c]) not in COMMON_WORDS)


@pytest.mark.parametrize(("key", "scenario"), PREMISE_CASES, ids=[f"{k}-{s}" for k, s in PREMISE_CASES])
def test_placeholders_never_reach_run_scripts(key: str, scenario: str, baselines: Baselines) -> None:
    """The premise of the run: check: in a normal render no answer is spliced into a shell script."""
    placeholder = PLACEHOLDER[key, scenario]
    for rel, scripts in run_scripts(baselines.tree(scenario)).items():
        for script in scripts:
            assert placeholder not in script, f"{key}={placeholder!r} is spliced into a run: script in {rel}"


@pytest.mark.parametrize("fragment", FRAGMENTS.values(), ids=FRAGMENTS.keys())
@pytest.mark.parametrize("key", FREE_TEXT)
def test_hostile_fragment_is_refused_or_inert(
    key: str, fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], baselines: Baselines
) -> None:
    scenario = FIRST_SCENARIO[key]
    value = PLACEHOLDER[key, scenario] + fragment
    assert_refused_or_inert(key, scenario, value, tmp_path, capsys, baselines)


def _typed_cases() -> Iterator[Any]:
    for key, scenario in CASES:
        if scenario != FIRST_SCENARIO[key]:
            continue
        for value in YAML_TYPED_EXPLICIT:
            marks = []
            if not YAML_RETYPING_FIXED and _accepted(key, scenario, value):
                marks.append(
                    pytest.mark.xfail(
                        strict=True,
                        reason=f"known bug: {key}={value} is accepted and rendered as an unquoted YAML scalar",
                    )
                )
            yield pytest.param(key, scenario, value, marks=marks, id=f"{key}={value}")


@pytest.mark.parametrize(("key", "scenario", "value"), list(_typed_cases()))
def test_yaml_typed_value_is_refused_or_inert(
    key: str, scenario: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], baselines: Baselines
) -> None:
    assert_refused_or_inert(key, scenario, value, tmp_path, capsys, baselines)


def test_long_valid_project_name_is_refused_by_its_own_key_or_renders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], baselines: Baselines
) -> None:
    value = "a" * 63  # longer than the 39 characters that keep the derived defaults valid
    assert_refused_or_inert("project_name", "python-defaults", value, tmp_path, capsys, baselines)


@st.composite
def hostile_cases(draw: st.DrawFn) -> tuple[str, str, str]:
    key, scenario = draw(st.sampled_from(CASES))
    placeholder = PLACEHOLDER[key, scenario]
    piece = st.one_of(st.sampled_from(list(FRAGMENTS.values())), st.sampled_from(YAML_TYPED), st.text(max_size=20))
    composed = st.builds(
        lambda prefix, parts, suffix: prefix + "".join(parts) + suffix,
        st.sampled_from([placeholder, "", placeholder[: len(placeholder) // 2]]),
        st.lists(piece, min_size=1, max_size=3),
        st.sampled_from(["", "-x", "/x", placeholder]),
    )
    value = draw(st.one_of(composed, st.text(), st.sampled_from(YAML_TYPED)))
    return key, scenario, value


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
@given(case=hostile_cases())
def test_hostile_free_text_answers_are_refused_or_inert(
    case: tuple[str, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], baselines: Baselines
) -> None:
    key, scenario, value = case
    if not YAML_RETYPING_FIXED:
        assume(not _yaml_retypes(value))  # the known bug; covered by the strict xfails above
    with tempfile.TemporaryDirectory(dir=tmp_path) as work:
        assert_refused_or_inert(key, scenario, value, Path(work), capsys, baselines)


# --- list answers (--data 'iac=[terraform, kubernetes]') -------------------------------------------------


def _list_payloads(key: str) -> list[str]:
    first = str(TEMPLATE.question(key).values[0])
    payloads = [
        "!!python/object/apply:os.system [id]",
        f"[{first}, {{a: b}}]",
        f"[{first}, !!python/object/apply:os.system [id]]",
        f"[{first}, !!python/name:os.system]",
        f"[{first}, *undefined]",
        f"[{first}, [{first}]]",
        f"[{first}, !!binary aGk=]",
        f"[{first}, 1]",
        f"[{first}, null]",
        f"{{{first}: true}}",
        f"[{first}, '{first}\n- x']",
        f"[{first}]\n---\n[x]",
        f"[{first}, ${{{{ github.event.issue.title }}}}]",
    ]
    if key == "iac":  # the two regressions asked for by name
        assert "!!python/object/apply:os.system [id]" in payloads and "[terraform, {a: b}]" in payloads
    return payloads


@pytest.mark.parametrize(
    ("key", "payload"),
    [(key, payload) for key in MULTISELECT for payload in _list_payloads(key)],
)
def test_list_answer_cannot_inject(
    key: str, payload: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    called: list[Any] = []

    def system(*args: Any) -> int:
        called.append(args)
        return 0

    monkeypatch.setattr(os, "system", system)
    dest = tmp_path / "app"
    code = main(["new", str(dest), "--defaults", "--data", f"{key}={payload}"])
    err = capsys.readouterr().err
    assert not called, "a YAML tag in --data ran os.system"
    assert code == 2, f"--data {key}={payload!r}: exit {code}: {err}"
    assert f"'{key}'" in err and "Traceback" not in err, err
    assert not dest.exists()


def _alias_bomb(key: str, depth: int = 10) -> str:
    first = str(TEMPLATE.question(key).values[0])
    levels = [f"&l0 [{', '.join([first] * 9)}]"]
    levels += [f"&l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, depth)]
    return "[" + ", ".join(levels) + "]"


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def test_alias_bomb_in_list_answer_is_refused_quickly(tmp_path: Path) -> None:
    dest = tmp_path / "app"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "generator", "new", str(dest), "--defaults", "--data", f"iac={_alias_bomb('iac')}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            preexec_fn=_limit_memory,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("a 400-character --data alias bomb was not refused within 5 s")
    assert proc.returncode == 2, proc.stderr[:2000]
    assert "'iac'" in proc.stderr and len(proc.stderr) < 2000
    assert not dest.exists()
