"""The evidence store scripts of the rendered trees, run against stand-in cloud CLIs (tests/fakes/cloud_cli.py):
ship-evidence.sh writes only to a store that is locked as promised, never over an existing key, and confirms
each object's lock; verify-evidence.sh (the daily job) finds a day's manifests and fails on anything missing or
unlocked, recording the result either way. Each store's scripts come from the golden scenario that chooses it.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.cloud_cli import default_state
from tests.script_runner import Result, Runner

SHA = "3f786850e387550fdab836ed7e6dc881de23001b"
FAKE = Path(__file__).parent / "fakes" / "cloud_cli.py"
DAYS = 2555


@dataclass(frozen=True)
class Store:
    scenario: str
    name: str
    bucket: str
    tool: str


STORES = {
    "aws": Store("python-defaults", "aws", "shop-evidence", "aws"),
    "gcp": Store("node-terraform-public", "gcp", "shop-evidence", "gcloud"),
    "azure": Store("go-kubernetes-azure", "azure", "shopevidence/evidence", "az"),
}


class Cloud:
    """A sandbox with the three stand-in CLIs on PATH and one store's state."""

    def __init__(self, runner: Runner, store: Store, tmp_path: Path) -> None:
        self.runner, self.store, self.tmp = runner, store, tmp_path
        self.state_file = tmp_path / "cloud.json"
        self.save(default_state(store.name, store.bucket, DAYS))
        for tool in ("aws", "gcloud", "az"):
            exe = runner.bin / tool
            exe.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(FAKE))} {tool} \"$@\"\n")
            exe.chmod(0o755)

    def load(self) -> dict[str, Any]:
        return dict(json.loads(self.state_file.read_text()))

    def save(self, state: dict[str, Any]) -> None:
        self.state_file.write_text(json.dumps(state))

    def change(self, path: str, value: Any) -> None:
        """Set a dotted PATH of the state (e.g. aws.lock.Rule.DefaultRetention.Mode)."""
        state = self.load()
        *parents, last = path.split(".")
        node = state
        for part in parents:
            node = node[part]
        node[last] = value
        self.save(state)

    def env(self, **extra: str | None) -> dict[str, str | None]:
        env: dict[str, str | None] = {
            "FAKE_CLOUD_STATE": str(self.state_file),
            "EVIDENCE_STORE": self.store.name,
            "EVIDENCE_BUCKET": self.store.bucket,
            "EVIDENCE_RETENTION_DAYS": str(DAYS),
        }
        if self.store.name == "aws":
            env["EVIDENCE_REGION"] = "eu-west-1"
        env.update(extra)
        return env

    def manifest(self, files: dict[str, bytes], name: str = "evidence-manifest") -> Path:
        folder = self.tmp / "artifacts"
        for rel, content in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(content)
        out = self.tmp / f"{name}.json"
        result = self.runner.run(
            "scripts/evidence-manifest.sh",
            DIR=str(folder), PROJECT="shop", SHA=SHA, RUN_ID="812", RUN_ATTEMPT="1", MANIFEST_OUT=str(out),
        )
        assert result.returncode == 0, result
        return out

    def ship(self, manifest: Path, **extra: str | None) -> Result:
        return self.runner.run(
            "scripts/ship-evidence.sh", **self.env(MANIFEST=str(manifest), DIR=str(self.tmp / "artifacts"), **extra)
        )

    def verify(self, day: str | None = None, **extra: str | None) -> tuple[Result, dict[str, Any] | None]:
        out = self.tmp / "verification.json"
        result = self.runner.run(
            "scripts/verify-evidence.sh",
            **self.env(PROJECT="shop", DAY=day or time.strftime("%Y-%m-%d", time.gmtime()), OUT=str(out), **extra),
        )
        return result, (json.loads(out.read_text()) if out.exists() else None)

    def calls(self) -> list[list[str]]:
        return [list(c) for c in self.load()["calls"]]



FILES = {f"sast-{SHA}-1/semgrep.sarif": b'{"runs": []}', f"sbom-{SHA}-1/sbom.spdx.json": b'{"spdxVersion": "SPDX-2.3"}'}


@pytest.fixture(params=sorted(STORES), scope="module")
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Runner, Store]:
    store = STORES[request.param]
    return Runner.render(tmp_path_factory, store.scenario), store


def make_cloud(tree: Path, store: Store, tmp_path: Path) -> Cloud:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    return Cloud(Runner(tree, sandbox), store, tmp_path)


@pytest.fixture
def cloud(rendered: tuple[Runner, Store], tmp_path: Path) -> Cloud:
    runner, store = rendered
    return make_cloud(runner.tree, store, tmp_path)


def stored(cloud: Cloud) -> set[str]:
    return set(cloud.load()["objects"])


def test_ship_writes_every_file_then_the_manifest_each_locked(cloud: Cloud) -> None:
    manifest = cloud.manifest(FILES)
    doc = json.loads(manifest.read_text())
    result = cloud.ship(manifest)
    assert result.returncode == 0, result
    keys = [f["object_key"] for f in doc["files"]]
    assert stored(cloud) == {*keys, doc["manifest_key"]}
    day = time.strftime("%Y/%m/%d", time.gmtime())
    assert doc["manifest_key"] == f"shop/{day}/{SHA}/evidence-manifest-812-1.json"
    assert all(k.startswith(f"shop/{day}/{SHA}/") for k in keys)
    calls = [" ".join(c) for c in cloud.calls()]
    first_write = next(i for i, c in enumerate(calls) if "put-object" in c or " cp " in f" {c} " or "blob upload" in c)
    preflight = {"aws": "get-bucket-versioning", "gcp": "buckets describe", "azure": "immutability-policy show"}
    assert any(preflight[cloud.store.name] in c for c in calls[:first_write]), calls
    # The manifest is written last: its presence means every file made it.
    last_write = [c for c in calls if "put-object" in c or "storage cp" in c or "blob upload" in c][-1]
    assert doc["manifest_key"] in last_write


def test_ship_never_touches_an_existing_key(cloud: Cloud) -> None:
    manifest = cloud.manifest(FILES)
    assert cloud.ship(manifest).returncode == 0
    before = cloud.load()["objects"]
    again = cloud.ship(manifest)
    assert again.returncode == 1, again
    assert "already exists: evidence is never overwritten" in again.errors[0]
    assert cloud.load()["objects"] == before


# Each: a change to the store's state, and the words of the error. Nothing may be written.
BROKEN = {
    "aws": {
        "no-object-lock": ("aws.lock", None, "ObjectLockConfigurationNotFoundError"),
        "lock-disabled": ("aws.lock.ObjectLockEnabled", "Disabled", "Object Lock is not enabled"),
        "governance-mode": ("aws.lock.Rule.DefaultRetention.Mode", "GOVERNANCE", "not COMPLIANCE"),
        "short-retention": ("aws.lock.Rule.DefaultRetention", {"Mode": "COMPLIANCE", "Days": 400}, "400 days, less than the 2555"),
        "no-versioning": ("aws.versioning", {}, "versioning is not Enabled (never enabled)"),
        "versioning-suspended": ("aws.versioning", {"Status": "Suspended"}, "versioning is not Enabled (Suspended)"),
        "cli-error": ("fail", {"get-object-lock-configuration": "not authorized"}, "AccessDenied"),
        "head-forbidden": ("fail", {"head-object": "Forbidden"}, "could not be checked"),
        "wrong-bucket": ("bucket", "someone-elses", "NoSuchBucket"),
    },
    "gcp": {
        "no-retention-policy": ("gcp.retention_policy", None, "missing or not locked"),
        "unlocked-policy": ("gcp.retention_policy.isLocked", False, "missing or not locked"),
        "short-retention": ("gcp.retention_policy.retentionPeriod", "86400", "86400 s, less than the 2555 days"),
        "cli-error": ("fail", {"buckets describe": "permission denied"}, "HTTPError 403"),
        "describe-forbidden": ("fail", {"objects describe": "permission denied"}, "could not be checked"),
    },
    "azure": {
        "no-policy": ("azure.policy", None, "ContainerImmutabilityPolicyNotFound"),
        "unlocked-policy": ("azure.policy.state", "Unlocked", "is Unlocked, not Locked"),
        "short-retention": ("azure.policy.immutabilityPeriodSinceCreationInDays", 30, "30 days, less than the 2555"),
        "cli-error": ("fail", {"container immutability-policy show": "AuthorizationFailed"}, "AuthorizationFailed"),
        "exists-error": ("fail", {"blob exists": "AuthorizationPermissionMismatch"}, "could not be checked"),
    },
}
CASES = [(store, case) for store, cases in BROKEN.items() for case in cases]


@pytest.mark.parametrize(("store", "case"), CASES, ids=[f"{s}-{c}" for s, c in CASES])
def test_ship_fails_closed(store: str, case: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    cloud = make_cloud(Runner.render(tmp_path_factory, STORES[store].scenario).tree, STORES[store], tmp_path)
    manifest = cloud.manifest(FILES)
    path, value, message = BROKEN[store][case]
    cloud.change(path, value)
    result = cloud.ship(manifest)
    assert result.returncode == 1, result
    assert any(message in e for e in result.errors), result
    assert stored(cloud) == set()


def test_ship_fails_when_the_written_object_is_not_locked(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A store whose settings read right but whose objects come back unlocked (a race, a stale read)."""
    cloud = make_cloud(Runner.render(tmp_path_factory, STORES["aws"].scenario).tree, STORES["aws"], tmp_path)
    manifest = cloud.manifest(FILES)
    fake = cloud.runner.bin / "aws"
    # Answer the settings as locked, then write without a lock: the confirmation after the write must catch it.
    real = fake.read_text()
    fake.write_text(real.replace("exec ", 'case "$*" in *put-object*) '
                    'python3 -c "import json,os,sys;p=os.environ[\'FAKE_CLOUD_STATE\'];s=json.load(open(p));'
                    's[\'aws\'][\'lock\'][\'Rule\'][\'DefaultRetention\'][\'Mode\']=\'GOVERNANCE\';json.dump(s,open(p,\'w\'))";; esac\nexec ', 1))
    result = cloud.ship(manifest)
    assert result.returncode == 1, result
    assert "is not locked in COMPLIANCE mode (GOVERNANCE)" in result.errors[0]
    assert cloud.load()["objects"].keys() and not any(k.endswith(".json") and "manifest" in k for k in stored(cloud))


def test_ship_refuses_a_file_changed_since_the_manifest(cloud: Cloud) -> None:
    manifest = cloud.manifest(FILES)
    (cloud.tmp / "artifacts" / f"sast-{SHA}-1/semgrep.sarif").write_bytes(b"tampered")
    result = cloud.ship(manifest)
    assert result.returncode == 1, result
    assert "changed since the manifest" in result.errors[0]
    assert stored(cloud) == set()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EVIDENCE_STORE": "s3"}, "EVIDENCE_STORE must be aws, gcp or azure"),
        ({"EVIDENCE_RETENTION_DAYS": "0"}, "EVIDENCE_RETENTION_DAYS must be at least 1"),
        ({"EVIDENCE_RETENTION_DAYS": "7y"}, "EVIDENCE_RETENTION_DAYS must be a whole number"),
        ({"EVIDENCE_BUCKET": None}, "missing environment variable(s): EVIDENCE_BUCKET"),
    ],
    ids=["store", "zero-days", "days-not-number", "no-bucket"],
)
def test_ship_bad_environment_exits_2(cloud: Cloud, env: dict[str, str | None], message: str) -> None:
    result = cloud.ship(cloud.manifest(FILES), **env)
    assert result.returncode == 2, result
    assert message in result.errors[0]
    assert cloud.calls() == []


# --- verify-evidence.sh ------------------------------------------------------------------------------------


def test_verify_passes_on_a_day_shipped_and_locked(cloud: Cloud) -> None:
    assert cloud.ship(cloud.manifest(FILES)).returncode == 0
    result, record = cloud.verify()
    assert result.returncode == 0, result
    assert record is not None and record["result"] == "pass" and record["problems"] == []
    assert len(record["manifests"]) == 1 and record["objects"] == 3
    assert record["schema"] == "pipeproof/evidence-verification/v1" and record["retention_days"] == DAYS


def test_verify_passes_a_day_without_evidence_but_still_checks_the_store(cloud: Cloud) -> None:
    result, record = cloud.verify(day="2020-02-29")
    assert result.returncode == 0, result
    assert record is not None and record["manifests"] == [] and record["result"] == "pass"
    cloud.change({"aws": "aws.versioning", "gcp": "gcp.retention_policy", "azure": "azure.policy"}[cloud.store.name], None if cloud.store.name != "aws" else {})
    result, record = cloud.verify(day="2020-02-29")
    assert result.returncode == 1, result
    assert record is not None and record["result"] == "fail" and record["problems"]


def test_verify_fails_and_records_a_missing_object(cloud: Cloud) -> None:
    manifest = cloud.manifest(FILES)
    assert cloud.ship(manifest).returncode == 0
    gone = json.loads(manifest.read_text())["files"][0]["object_key"]
    state = cloud.load()
    del state["objects"][gone]
    cloud.save(state)
    result, record = cloud.verify()
    assert result.returncode == 1, result
    assert record is not None and record["result"] == "fail"
    assert any(gone in p for p in record["problems"]), record


@pytest.mark.parametrize("change", ["governance", "short", "unlocked"])
def test_verify_fails_on_an_object_no_longer_locked(change: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    cloud = make_cloud(Runner.render(tmp_path_factory, STORES["aws"].scenario).tree, STORES["aws"], tmp_path)
    manifest = cloud.manifest(FILES)
    assert cloud.ship(manifest).returncode == 0
    key = json.loads(manifest.read_text())["files"][1]["object_key"]
    state = cloud.load()
    obj = state["objects"][key]
    if change == "governance":
        obj["mode"] = "GOVERNANCE"
    elif change == "short":
        obj["until"] = "2027-01-01T00:00:00+00:00"
    else:
        obj.pop("mode")
        obj.pop("until")
    cloud.save(state)
    result, record = cloud.verify()
    assert result.returncode == 1, result
    assert record is not None and record["result"] == "fail"
    assert [p for p in record["problems"] if key in p], record


def test_verify_fails_when_the_listing_fails(cloud: Cloud) -> None:
    assert cloud.ship(cloud.manifest(FILES)).returncode == 0
    listing = {"aws": "list-objects-v2", "gcp": "objects list", "azure": "blob list"}[cloud.store.name]
    cloud.change("fail", {listing: "denied"})
    result, record = cloud.verify()
    assert result.returncode == 1, result
    assert record is not None and record["result"] == "fail"


def test_verify_rejects_a_bad_day(cloud: Cloud) -> None:
    result, record = cloud.verify(day="yesterday")
    assert result.returncode == 2 and record is None, result
