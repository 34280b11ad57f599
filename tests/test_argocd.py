"""generator/argocd.py on its own: the cron, duration and time-zone checks behind the answers, and the policy.csv
grammar and evaluation (deny wins, roles of roles, globs, Argo CD 3.0 sub-resource actions) the audit relies on."""

from __future__ import annotations

import pytest

from generator.argocd import cron_problem, duration_problem, grants, is_production, parse_policy, timezone_problem


@pytest.mark.parametrize(
    "schedule", ["0 9 * * 1-5", "*/15 8-18 * * mon-fri", "30 22 1,15 jan-jun 0", "0 0 * * 7", "@daily", "5 4 * * SUN"]
)
def test_cron_schedules_argo_cd_accepts(schedule: str) -> None:
    assert cron_problem(schedule) is None


@pytest.mark.parametrize(
    ("schedule", "why"),
    [
        ("0 9 * *", "4 fields"),
        ("0 9 * * * *", "6 fields"),
        ("60 9 * * *", "outside 0-59"),
        ("0 24 * * *", "outside 0-23"),
        ("0 9 0 * *", "outside 1-31"),
        ("0 9 * 13 *", "outside 1-12"),
        ("0 9 * * 8", "outside 0-7"),
        ("0 9 * * fri-mon", "runs backwards"),
        ("0 9 * * funday", "outside 0-7"),
        ("*/0 9 * * *", "not a positive number"),
        ("0 9-- * * *", "not a number, a range"),
        ("@sometimes", "fields"),
    ],
)
def test_cron_schedules_refused_with_the_reason(schedule: str, why: str) -> None:
    problem = cron_problem(schedule)
    assert problem is not None and why in problem, problem


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("8h", True),
        ("7h30m", True),
        ("45m", True),
        ("0h", False),
        ("169h", False),
        ("8", False),
        ("", False),
        ("1d", False),
    ],
)
def test_durations(text: str, ok: bool) -> None:
    assert (duration_problem(text) is None) is ok


@pytest.mark.parametrize(
    ("zone", "ok"),
    [
        ("UTC", True),
        ("Europe/Amsterdam", True),
        ("America/Argentina/Buenos_Aires", True),
        ("Mars/Olympus", False),
        ("europe/amsterdam", False),
        ("", False),
    ],
)
def test_time_zones_come_from_zoneinfo(zone: str, ok: bool) -> None:
    assert (timezone_problem(zone) is None) is ok


POLICY = """
# comments and blank lines are not rules

p, role:dev, applications, get, */*, allow
p, role:dev, applications, sync, shop-staging/*, allow
p, role:dev, applications, update/*, shop-production/*, allow
p, role:lead, applications, *, shop-*/*, allow
p, role:lead, applications, sync, shop-production/*, deny
p, role:release, applications, sync, shop-production/*, allow
g, role:lead, role:dev
g, acme:devs, role:dev
g, acme:leads, role:lead
g, acme:sre, role:release
"""


def test_policy_lines_parse_with_their_file_lines() -> None:
    parsed = parse_policy(POLICY, first_line=10)
    assert not parsed.errors
    assert [p.line for p in parsed.policies][:2] == [13, 14]
    assert parsed.roles_of("acme:leads") == {"acme:leads", "role:lead", "role:dev"}


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("p, role:x, applications, sync, a/*", "6 non-empty fields"),
        ("p, role:x, applications, sync, a/*, allow, extra", "6 non-empty fields"),
        ("p, role:x, applications, sync, , allow", "6 non-empty fields"),
        ("p, role:x, apps, sync, a/*, allow", "unknown resource 'apps'"),
        ("p, role:x, applications, sync, a/*, permit", "effect 'permit'"),
        ("g, acme:devs", "3 non-empty fields"),
        ("x, role:x, applications", "starts with p or g"),
    ],
)
def test_malformed_policy_lines_are_named(line: str, why: str) -> None:
    (error,) = parse_policy(line).errors
    assert error[0] == 1 and why in error[1], error


@pytest.mark.parametrize(
    ("subject", "obj", "can_sync"),
    [
        ("acme:devs", "shop-staging/web", True),
        ("acme:devs", "shop-production/web", False),  # update/* is not sync (Argo CD 3.0 fine-grained actions)
        ("acme:leads", "shop-staging/web", True),  # * through the lead role
        ("acme:leads", "shop-production/web", False),  # an explicit deny wins over the * allow
        ("acme:sre", "shop-production/web", True),
        ("someone", "shop-production/web", False),
    ],
)
def test_who_may_sync(subject: str, obj: str, can_sync: bool) -> None:
    assert bool(grants(parse_policy(POLICY), subject, "applications", "sync", obj)) is can_sync


@pytest.mark.parametrize(
    ("name", "production"),
    [
        ("prod", True),
        ("shop-production", True),
        ("prod-eu", True),
        ("payments.prd", False),
        ("product-catalog", False),
        ("staging", False),
        ("preprod-x", False),
    ],
)
def test_production_names(name: str, production: bool) -> None:
    assert is_production(name) is production
