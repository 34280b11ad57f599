"""The evidence store's Terraform, wherever a repository holds it, judged on what it makes true: the lock mode
and period, versioning, public access, an OIDC trust scoped to this repository's exact subjects, and a writer
that cannot delete or overwrite (PP-EVID-06). One judge per cloud, each a list of aspects."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.repo import Repo

ASPECTS = ("lock", "versioning", "public access", "trust", "write-only")
# Resources that make a Terraform module an evidence store: a bucket that can be locked.
_STORE_MARKERS = (
    "aws_s3_bucket_object_lock_configuration",
    "google_storage_bucket",
    "azurerm_storage_container_immutability_policy",
)
_REF = re.compile(r"\$\{(local|var)\.([A-Za-z0-9_-]+)\}")


@dataclass(frozen=True)
class Block:
    kind: str  # resource | data
    type: str
    name: str
    body: Mapping[str, Any]
    where: str  # file:line


@dataclass(frozen=True)
class Verdict:
    aspect: str
    ok: bool
    message: str
    where: str


@dataclass
class Module:
    """One folder of .tf files, parsed, with locals and variable defaults resolved in values."""

    folder: str
    blocks: list[Block] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)  # "local.x" / "var.x" -> value
    errors: list[str] = field(default_factory=list)

    def all(self, type_: str, kind: str = "resource") -> list[Block]:
        return [b for b in self.blocks if b.type == type_ and b.kind == kind]

    def one(self, type_: str, kind: str = "resource") -> Block | None:
        found = self.all(type_, kind)
        return found[0] if found else None

    def get(self, body: Mapping[str, Any], *path: str) -> Any:
        """A nested value (blocks are lists: the first is taken), locals and variables resolved."""
        node: Any = body
        for key in path:
            if isinstance(node, list):
                node = node[0] if node else None
            if not isinstance(node, Mapping) or key not in node:
                return None
            node = node[key]
        return self.resolve(node)

    def resolve(self, value: Any, depth: int = 0) -> Any:
        if depth > 5:
            return value
        if isinstance(value, list):
            return [self.resolve(v, depth + 1) for v in value]
        if not isinstance(value, str):
            return value
        whole = _REF.fullmatch(value)
        if whole and f"{whole[1]}.{whole[2]}" in self.values:
            return self.resolve(self.values[f"{whole[1]}.{whole[2]}"], depth + 1)

        def sub(m: re.Match[str]) -> str:
            found = self.values.get(f"{m[1]}.{m[2]}")
            return str(found) if isinstance(found, (str, int)) else m[0]

        return _REF.sub(sub, value)

    def data(self, reference: Any) -> Block | None:
        """The data block a `${data.TYPE.NAME.json}` reference names."""
        m = re.fullmatch(r"\$\{data\.([\w-]+)\.([\w-]+)\.json\}", str(reference or ""))
        return (
            next((b for b in self.blocks if b.kind == "data" and (b.type, b.name) == (m[1], m[2])), None) if m else None
        )


def _clean(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals and keys; drop them and its bookkeeping keys."""
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items() if k not in ("__is_block__", "__comments__")}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def modules(repo: Repo) -> list[Module]:
    """Every folder of .tf files that declares a lockable bucket, parsed."""
    folders: dict[str, list[Path]] = {}
    for path in repo.files("**/*.tf"):
        rel = path.relative_to(repo.root).as_posix()
        folders.setdefault(rel.rpartition("/")[0], []).append(path)
    found = []
    for folder, paths in sorted(folders.items()):
        texts = {
            p.relative_to(repo.root).as_posix(): repo.text(p.relative_to(repo.root).as_posix()) or "" for p in paths
        }
        if not any(re.search(rf'resource\s+"{marker}"', t) for t in texts.values() for marker in _STORE_MARKERS):
            continue
        import hcl2  # lark's grammar costs ~0.1 s to load: only for a repository with an evidence store

        module = Module(folder)
        for rel, text in sorted(texts.items()):
            try:
                doc = _clean(hcl2.loads(text))
            except Exception as exc:  # noqa: BLE001 - python-hcl2 raises lark's errors of many kinds
                module.errors.append(f"{rel}: not valid HCL ({type(exc).__name__})")
                continue
            for local in doc.get("locals", []):
                module.values.update({f"local.{k}": v for k, v in local.items()})
            for variable in doc.get("variable", []):
                for name, body in variable.items():
                    if isinstance(body, dict) and "default" in body:
                        module.values[f"var.{name}"] = body["default"]
            for kind in ("resource", "data"):
                for entry in doc.get(kind, []):
                    for type_, named in entry.items():
                        for name, body in named.items():
                            line = _line(text, kind, type_, name)
                            module.blocks.append(Block(kind, type_, name, body, f"{rel}:{line}"))
        found.append(module)
    return found


def _line(text: str, kind: str, type_: str, name: str) -> int:
    m = re.search(rf'^\s*{kind}\s+"{re.escape(type_)}"\s+"{re.escape(name)}"', text, re.MULTILINE)
    return text.count("\n", 0, m.start()) + 1 if m else 1


# --- what the subjects must look like -------------------------------------------------------------------------


def subject_problem(subject: Any, repository: str | None) -> str | None:
    """Why an OIDC `sub` value does not name exactly this repository and one branch or environment."""
    s = str(subject)
    if "*" in s or "?" in s:
        return f"subject {s!r} has a wildcard"
    gh = re.fullmatch(r"repo:([^:/]+)/([^:/]+):(ref:refs/heads/[^:]+|environment:[^:]+)", s)
    gl = re.fullmatch(r"project_path:([^:]+):ref_type:branch:ref:[^:]+", s)
    if not gh and not gl:
        return f"subject {s!r} names neither a branch nor an environment of one repository"
    named = f"{gh[1]}/{gh[2]}" if gh else (gl[1] if gl else "")
    if repository and named.lower() != repository.lower():
        return f"subject {s!r} is for {named}, not this repository ({repository})"
    return None


def _subjects_verdict(subjects: list[Any], repository: str | None, where: str, how: str) -> Verdict:
    if not subjects:
        return Verdict("trust", False, f"{how} names no `sub`: any repository's token would be trusted", where)
    problems = [p for s in subjects if (p := subject_problem(s, repository))]
    if problems:
        return Verdict("trust", False, "; ".join(problems), where)
    return Verdict(
        "trust", True, f"{how} trusts {len(subjects)} exact subject(s) of {repository or 'one repository'}", where
    )


# --- AWS ------------------------------------------------------------------------------------------------------


def _statements(module: Module, reference: Any) -> list[Mapping[str, Any]]:
    doc = module.data(reference)
    if doc is None:
        return []
    statements = doc.body.get("statement") or []
    return [s for s in statements if isinstance(s, Mapping)]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def judge_aws(module: Module, days: int, repository: str | None) -> Iterator[Verdict]:
    bucket = next((b for b in module.all("aws_s3_bucket") if module.get(b.body, "object_lock_enabled") is True), None)
    lock = module.one("aws_s3_bucket_object_lock_configuration")
    where = (lock or bucket or module.blocks[0]).where
    mode = module.get(lock.body, "rule", "default_retention", "mode") if lock else None
    years = module.get(lock.body, "rule", "default_retention", "years") if lock else None
    ddays = module.get(lock.body, "rule", "default_retention", "days") if lock else None
    period = (int(years) * 365 if isinstance(years, int) else 0) + (int(ddays) if isinstance(ddays, int) else 0)
    if bucket is None:
        yield Verdict("lock", False, "no bucket has object_lock_enabled = true", where)
    elif mode != "COMPLIANCE":
        yield Verdict("lock", False, f"the default retention mode is {mode or 'unset'}, not COMPLIANCE", where)
    elif period < days:
        yield Verdict("lock", False, f"the default retention is {period} days, less than the {days} promised", where)
    else:
        yield Verdict("lock", True, f"Object Lock COMPLIANCE, {period} days", where)

    versioning = module.one("aws_s3_bucket_versioning")
    status = module.get(versioning.body, "versioning_configuration", "status") if versioning else None
    yield Verdict(
        "versioning",
        status == "Enabled",
        f"versioning is {status or 'not configured'}",
        (versioning and versioning.where) or where,
    )

    block = module.one("aws_s3_bucket_public_access_block")
    flags = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    off = [f for f in flags if not block or module.get(block.body, f) is not True]
    yield Verdict(
        "public access",
        not off,
        "all public access blocked" if not off else f"public access not blocked: {', '.join(off)}",
        (block and block.where) or where,
    )

    roles = [
        r
        for r in module.all("aws_iam_role")
        if any(
            "sts:AssumeRoleWithWebIdentity" in _as_list(module.get(s, "actions"))
            for s in _statements(module, r.body.get("assume_role_policy"))
        )
        or "AssumeRoleWithWebIdentity" in str(r.body.get("assume_role_policy"))
    ]
    if not roles:
        yield Verdict("trust", False, "no IAM role is assumed through OIDC (sts:AssumeRoleWithWebIdentity)", where)
    for role in roles:
        subjects: list[Any] = []
        loose = ""
        inline = str(role.body.get("assume_role_policy"))
        if module.data(role.body.get("assume_role_policy")) is None:
            # jsonencode({...}) or a JSON string: Condition = { StringLike = { "ISSUER:sub" = [...] } }
            for test, values in _inline_sub_conditions(inline):
                if test != "StringEquals":
                    loose = f"the `sub` condition uses {test}, not StringEquals"
                subjects += values
        for statement in _statements(module, role.body.get("assume_role_policy")):
            for condition in _as_list(statement.get("condition")):
                variable = str(module.get(condition, "variable") or "")
                if variable.endswith(":sub"):
                    test = module.get(condition, "test")
                    if test != "StringEquals":
                        loose = f"the `sub` condition uses {test}, not StringEquals"
                    subjects += _as_list(module.get(condition, "values"))
        verdict = _subjects_verdict(subjects, repository, role.where, f"role {role.name}")
        yield Verdict("trust", False, loose, role.where) if loose else verdict

        yield _aws_write_only(module, role, where)


_AWS_FORBIDDEN = re.compile(
    r"^(\*|s3:\*|s3:Delete\w*|s3:PutBucket\w*|s3:PutObjectRetention|s3:PutObjectLegalHold|s3:BypassGovernanceRetention|"
    r"s3:PutLifecycleConfiguration|s3:PutBucketObjectLockConfiguration|s3:PutObjectAcl|s3:PutObjectVersionAcl|"
    r"iam:\w+|kms:\*|kms:ScheduleKeyDeletion|kms:DisableKey)$",
    re.IGNORECASE,
)


_CONDITION = re.compile(r'"?((?:ForAnyValue:|ForAllValues:)?String\w+)"?\s*[=:]\s*\{([^{}]*)\}')
_SUB = re.compile(r'"[^"]*:sub"\s*[=:]\s*(\[[^\]]*\]|"[^"]*")')
_ACTION = re.compile(r'"?Action"?\s*[=:]\s*(\[[^\]]*\]|"[^"]*")')


def _inline_sub_conditions(text: str) -> list[tuple[str, list[str]]]:
    """(operator, values) of each `...:sub` condition in an inline policy (jsonencode or JSON text)."""
    found = []
    for m in _CONDITION.finditer(text):
        for sub in _SUB.finditer(m[2]):
            found.append((m[1], re.findall(r'"([^"]*)"', sub[1])))
    return found


def _aws_write_only(module: Module, role: Block, where: str) -> Verdict:
    actions: list[str] = []
    for policy in module.all("aws_iam_role_policy"):
        if str(module.get(policy.body, "role")).startswith(f"${{aws_iam_role.{role.name}."):
            if module.data(policy.body.get("policy")) is None:  # jsonencode({...}): every Action it lists
                for m in _ACTION.finditer(str(policy.body.get("policy"))):
                    actions += re.findall(r'"([^"]*)"', m[1])
            for statement in _statements(module, policy.body.get("policy")):
                if (module.get(statement, "effect") or "Allow") == "Allow":
                    actions += [str(a) for a in _as_list(module.get(statement, "actions"))]
    attached = [
        str(module.get(a.body, "policy_arn"))
        for a in module.all("aws_iam_role_policy_attachment")
        if str(module.get(a.body, "role")).startswith(f"${{aws_iam_role.{role.name}.")
    ]
    too_much = sorted({a for a in actions if _AWS_FORBIDDEN.match(a)} | {a for a in attached if "aws:policy" in a})
    if too_much:
        return Verdict("write-only", False, f"role {role.name} may {', '.join(too_much)}", role.where)
    if "s3:PutObject" not in actions:
        return Verdict("write-only", False, f"role {role.name} cannot write evidence (no s3:PutObject)", role.where)
    # Overwrites: a bucket policy must refuse a PutObject without If-None-Match.
    refuses = any(
        (module.get(s, "effect") == "Deny")
        and "s3:PutObject" in _as_list(module.get(s, "actions"))
        and any(
            str(module.get(c, "variable")) == "s3:if-none-match" and module.get(c, "test") == "Null"
            for c in _as_list(s.get("condition"))
        )
        for policy in module.all("aws_s3_bucket_policy")
        for s in _statements(module, policy.body.get("policy"))
    )
    if not refuses:
        return Verdict(
            "write-only",
            False,
            "no bucket policy refuses a PutObject without If-None-Match: a write may replace a key",
            where,
        )
    return Verdict(
        "write-only", True, f"role {role.name} writes new objects only (no delete, no overwrite)", role.where
    )


# --- GCP ------------------------------------------------------------------------------------------------------


def judge_gcp(module: Module, days: int, repository: str | None) -> Iterator[Verdict]:
    bucket = next(
        (b for b in module.all("google_storage_bucket") if b.body.get("retention_policy")), None
    ) or module.one("google_storage_bucket")
    where = bucket.where if bucket else module.blocks[0].where
    locked = module.get(bucket.body, "retention_policy", "is_locked") if bucket else None
    period = module.get(bucket.body, "retention_policy", "retention_period") if bucket else None
    seconds = int(period) if isinstance(period, (int, float)) or (isinstance(period, str) and period.isdigit()) else 0
    if locked is not True:
        yield Verdict("lock", False, "the bucket's retention policy is missing or not locked (is_locked)", where)
    elif seconds < days * 86400:
        yield Verdict("lock", False, f"the retention period is {seconds} s, less than the {days} days promised", where)
    else:
        yield Verdict("lock", True, f"retention policy locked, {seconds} s", where)
    # A locked retention policy forbids replacing or deleting a retained object: GCS needs no versioning for it.
    yield Verdict("versioning", True, "a locked retention policy keeps every object unchanged", where)
    public = []
    if not bucket or module.get(bucket.body, "public_access_prevention") != "enforced":
        public.append("public_access_prevention is not enforced")
    if not bucket or module.get(bucket.body, "uniform_bucket_level_access") is not True:
        public.append("uniform bucket-level access is off")
    for member in module.all("google_storage_bucket_iam_member") + module.all("google_storage_bucket_iam_binding"):
        if re.search(r"allUsers|allAuthenticatedUsers", str(member.body)):
            public.append(f"{member.type}.{member.name} grants the public")
    yield Verdict("public access", not public, "; ".join(public) or "public access prevented", where)

    providers = module.all("google_iam_workload_identity_pool_provider")
    if not providers:
        yield Verdict("trust", False, "no workload identity provider", where)
    for provider in providers:
        condition = str(module.get(provider.body, "attribute_condition") or "")
        parts = [p.strip() for p in condition.split("||")] if condition else []
        subjects = [m[1] for p in parts if (m := re.fullmatch(r"assertion\.sub\s*==\s*['\"]([^'\"]+)['\"]", p))]
        if len(subjects) != len(parts):
            yield Verdict(
                "trust",
                False,
                f"attribute_condition {condition!r} is not a list of exact `assertion.sub ==` tests",
                provider.where,
            )
        else:
            yield _subjects_verdict(subjects, repository, provider.where, f"provider {provider.name}")
    for binding in module.all("google_service_account_iam_member"):
        if "principalSet://" in str(binding.body.get("member")):
            yield Verdict("trust", False, f"{binding.name} admits a whole principalSet, not one subject", binding.where)

    roles = {b.name: b for b in module.all("google_project_iam_custom_role")}
    too_much = []
    for member in module.all("google_storage_bucket_iam_member"):
        role = str(module.get(member.body, "role"))
        if role in (
            "roles/storage.admin",
            "roles/storage.objectAdmin",
            "roles/storage.legacyBucketOwner",
            "roles/owner",
            "roles/editor",
        ):
            too_much.append(f"{member.name}: {role}")
        m = re.fullmatch(r"\$\{google_project_iam_custom_role\.([\w-]+)\.\w+\}", role)
        if m and m[1] in roles:
            perms = [str(p) for p in _as_list(module.get(roles[m[1]].body, "permissions"))]
            too_much += [f"{m[1]}: {p}" for p in perms if re.search(r"delete|update|setIamPolicy|\*", p)]
    yield Verdict(
        "write-only",
        not too_much,
        "the writer may " + ", ".join(too_much)
        if too_much
        else "the writer creates and reads objects only (no delete, so no overwrite)",
        where,
    )


# --- Azure ----------------------------------------------------------------------------------------------------


def judge_azure(module: Module, days: int, repository: str | None) -> Iterator[Verdict]:
    policy = module.one("azurerm_storage_container_immutability_policy")
    account = module.one("azurerm_storage_account")
    where = (policy or account or module.blocks[0]).where
    period = module.get(policy.body, "immutability_period_in_days") if policy else None
    if policy is None or module.get(policy.body, "locked") is not True:
        yield Verdict("lock", False, "the container's immutability policy is missing or not locked", where)
    elif not isinstance(period, int) or period < days:
        yield Verdict("lock", False, f"the immutability period is {period} days, less than the {days} promised", where)
    else:
        yield Verdict("lock", True, f"immutability policy locked, {period} days", where)
    versioning = module.get(account.body, "blob_properties", "versioning_enabled") if account else None
    yield Verdict(
        "versioning",
        versioning is True,
        f"blob versioning is {'on' if versioning is True else 'off'}",
        (account and account.where) or where,
    )
    public = []
    if not account or module.get(account.body, "allow_nested_items_to_be_public") is not False:
        public.append("allow_nested_items_to_be_public is not false")
    for container in module.all("azurerm_storage_container"):
        if (module.get(container.body, "container_access_type") or "private") != "private":
            public.append(f"container {container.name} is {module.get(container.body, 'container_access_type')}")
    yield Verdict(
        "public access", not public, "; ".join(public) or "no public access", (account and account.where) or where
    )
    credentials = module.all("azurerm_federated_identity_credential")
    if not credentials:
        yield Verdict("trust", False, "no federated identity credential", where)
    subjects = [module.get(c.body, "subject") for c in credentials]
    for_each = [c for c in credentials if str(module.get(c.body, "subject")).startswith("${each.")]
    if for_each:
        subjects = [s for c in for_each for s in _as_list(module.resolve(_for_each_values(c.body.get("for_each"))))] + [
            s for s in subjects if not str(s).startswith("${each.")
        ]
    if credentials:
        yield _subjects_verdict(subjects, repository, credentials[0].where, "the federated credentials")
    too_much = []
    for definition in module.all("azurerm_role_definition"):
        for key in ("actions", "data_actions"):
            too_much += [
                str(a)
                for a in _as_list(module.get(definition.body, "permissions", key))
                if re.search(r"/delete$|\*", str(a))
            ]
    for assignment in module.all("azurerm_role_assignment"):
        name = str(module.get(assignment.body, "role_definition_name") or "")
        if name in (
            "Owner",
            "Contributor",
            "Storage Blob Data Owner",
            "Storage Blob Data Contributor",
            "Storage Account Contributor",
        ):
            too_much.append(name)
    yield Verdict(
        "write-only",
        not too_much,
        "the writer may " + ", ".join(too_much) if too_much else "the writer adds and reads blobs only (no delete)",
        where,
    )


def _for_each_values(expression: Any) -> Any:
    """`{ for i, subject in local.oidc_subjects : ... }` -> ${local.oidc_subjects}."""
    m = re.search(r"\bin\s+((?:local|var)\.[\w-]+)", str(expression))
    return f"${{{m[1]}}}" if m else None


JUDGES: dict[str, Callable[[Module, int, str | None], Iterator[Verdict]]] = {
    "aws_s3_bucket_object_lock_configuration": judge_aws,
    "google_storage_bucket": judge_gcp,
    "azurerm_storage_container_immutability_policy": judge_azure,
}


def judge(module: Module, days: int, repository: str | None) -> list[Verdict]:
    """Every aspect of one evidence-store module."""
    for marker, fn in JUDGES.items():
        if module.all(marker):
            return list(fn(module, days, repository))
    return []
