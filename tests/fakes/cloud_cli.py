"""Stand-ins for the aws, gcloud and az CLIs, for the evidence scripts: clouds cannot run here.

Each is this file run as `cloud_cli.py TOOL ARGS...` by a small executable on PATH. It answers from a JSON state
file (FAKE_CLOUD_STATE) the way the real CLI answers: the JSON shapes of `--output json` / `--format=json`, the
error lines on stderr, exit 254 (aws) or 1 (gcloud, az) on an error. Every call is appended to the state's
`calls`. A write takes the lock the store's settings give it (S3 default retention, GCS retention policy), so a
test changes the settings, not the answers. `fail` maps a subcommand to an error message the CLI prints instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

YEAR = timedelta(days=365.25)


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def default_state(store: str, bucket: str, days: int = 2555) -> dict[str, Any]:
    """A store set up as the generated Terraform sets it up, retention DAYS (rounded up to years on S3)."""
    years = -(-days // 365)
    return {
        "store": store,
        "bucket": bucket,
        "aws": {
            "lock": {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": years}}},
            "versioning": {"Status": "Enabled"},
        },
        "gcp": {"retention_policy": {"isLocked": True, "retentionPeriod": str(int(years * YEAR.total_seconds()))}},
        "azure": {"policy": {"immutabilityPeriodSinceCreationInDays": days, "state": "Locked"}},
        "objects": {},
        "fail": {},
        "calls": [],
    }


def flag(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def positional(args: list[str]) -> list[str]:
    """Arguments that are neither flags nor flag values (every flag used here takes a value but these)."""
    bare = {"--only-show-errors"}
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg.startswith("--"):
            skip = "=" not in arg and arg not in bare
        else:
            out.append(arg)
    return out


class Failure(Exception):
    pass


def put(state: dict[str, Any], key: str, body: bytes) -> None:
    obj: dict[str, Any] = {"body": base64.b64encode(body).decode(), "sha256": hashlib.sha256(body).hexdigest()}
    store = state["store"]
    if store == "aws":
        lock = state["aws"]["lock"]
        retention = (lock or {}).get("Rule", {}).get("DefaultRetention")
        if lock and lock.get("ObjectLockEnabled") == "Enabled" and retention:
            span = retention.get("Years", 0) * YEAR + timedelta(days=retention.get("Days", 0))
            obj["mode"] = retention["Mode"]
            obj["until"] = (now() + span).isoformat()
    elif store == "gcp":
        policy = state["gcp"]["retention_policy"]
        if policy:
            obj["until"] = (now() + timedelta(seconds=int(policy["retentionPeriod"]))).isoformat()
    state["objects"][key] = obj


def aws(state: dict[str, Any], args: list[str]) -> Any:
    if args[:1] != ["s3api"]:
        raise Failure(f"unknown command {args}")
    sub = args[1]
    op = "".join(part.capitalize() for part in sub.split("-"))
    if sub in state["fail"]:
        raise Failure(f"An error occurred (AccessDenied) when calling the {op} operation: {state['fail'][sub]}")
    if flag(args, "--bucket") != state["bucket"]:
        raise Failure(f"An error occurred (NoSuchBucket) when calling the {op} operation: The specified bucket does not exist")
    key = flag(args, "--key")
    objects = state["objects"]
    if sub == "get-object-lock-configuration":
        if state["aws"]["lock"] is None:
            raise Failure(
                f"An error occurred (ObjectLockConfigurationNotFoundError) when calling the {op} operation: "
                "Object Lock configuration does not exist for this bucket"
            )
        return {"ObjectLockConfiguration": state["aws"]["lock"]}
    if sub == "get-bucket-versioning":
        return state["aws"]["versioning"]
    if sub == "head-object":
        if key not in objects:
            raise Failure(f"An error occurred (404) when calling the {op} operation: Not Found")
        obj = objects[key]
        answer: dict[str, Any] = {"ContentLength": len(base64.b64decode(obj["body"]))}
        if "mode" in obj:
            answer |= {"ObjectLockMode": obj["mode"], "ObjectLockRetainUntilDate": obj["until"]}
        return answer
    if sub == "put-object":
        body = Path(flag(args, "--body") or "").read_bytes()
        if key in objects and flag(args, "--if-none-match") == "*":
            raise Failure(
                f"An error occurred (PreconditionFailed) when calling the {op} operation: "
                "At least one of the pre-conditions you specified did not hold"
            )
        if flag(args, "--checksum-sha256") != base64.b64encode(hashlib.sha256(body).digest()).decode():
            raise Failure(f"An error occurred (BadDigest) when calling the {op} operation: checksum mismatch")
        put(state, str(key), body)
        return {"ETag": '"x"', "ChecksumSHA256": flag(args, "--checksum-sha256")}
    if sub == "list-objects-v2":
        prefix = flag(args, "--prefix") or ""
        found = [{"Key": k} for k in sorted(objects) if k.startswith(prefix)]
        return {"Contents": found} if found else {"RequestCharged": None, "Prefix": prefix}
    if sub == "get-object":
        if key not in objects:
            raise Failure(f"An error occurred (NoSuchKey) when calling the {op} operation: The specified key does not exist.")
        Path(positional(args[2:])[-1]).write_bytes(base64.b64decode(objects[key]["body"]))
        return {"ContentLength": 1}
    raise Failure(f"unknown s3api command {sub}")


def gcloud(state: dict[str, Any], args: list[str]) -> Any:
    if args[:1] != ["storage"]:
        raise Failure(f"unknown command {args}")
    what = " ".join(args[1:3]) if args[1] in ("buckets", "objects") else args[1]
    if what in state["fail"]:
        raise Failure(f"ERROR: (gcloud.storage.{what.replace(' ', '.')}) HTTPError 403: {state['fail'][what]}")
    urls = [a for a in positional(args[1:]) if a.startswith("gs://")]
    prefix = f"gs://{state['bucket']}"
    objects = state["objects"]
    if what == "buckets describe":
        if urls != [prefix]:
            raise Failure(f"ERROR: (gcloud.storage.buckets.describe) {urls[0]} not found: 404.")
        answer: dict[str, Any] = {"name": state["bucket"], "storage_url": prefix + "/"}
        if state["gcp"]["retention_policy"] is not None:
            answer["retention_policy"] = state["gcp"]["retention_policy"]
        return answer
    if what == "objects describe":
        key = urls[0].removeprefix(prefix + "/")
        if key not in objects:
            raise Failure(f"ERROR: (gcloud.storage.objects.describe) {urls[0]} not found: 404.")
        answer = {"name": key, "bucket": state["bucket"]}
        if "until" in objects[key]:
            answer["retention_expiration_time"] = objects[key]["until"]
        return answer
    if what == "objects list":
        start = urls[0].removeprefix(prefix + "/").removesuffix("**")
        found = [{"name": k} for k in sorted(objects) if k.startswith(start)]
        if not found:
            raise Failure(f"ERROR: (gcloud.storage.objects.list) The following URLs matched no objects or files:\n-{urls[0]}")
        return found
    if what == "cp":
        src, dst = positional(args[2:])
        if dst.startswith(prefix + "/"):
            key = dst.removeprefix(prefix + "/")
            if key in objects and flag(args, "--if-generation-match") == "0":
                raise Failure("ERROR: HTTPError 412: At least one of the pre-conditions you specified did not hold.")
            put(state, key, Path(src).read_bytes())
            return None
        key = src.removeprefix(prefix + "/")
        if key not in objects:
            raise Failure(f"ERROR: (gcloud.storage.cp) The following URLs matched no objects or files:\n-{src}")
        Path(dst).write_bytes(base64.b64decode(objects[key]["body"]))
        return None
    raise Failure(f"unknown gcloud storage command {what}")


def az(state: dict[str, Any], args: list[str]) -> Any:
    if args[:1] != ["storage"]:
        raise Failure(f"unknown command {args}")
    what = " ".join(args[1:3]) if args[1] == "blob" else " ".join(args[1:4])
    if what in state["fail"]:
        raise Failure(f"ERROR: {state['fail'][what]}")
    account, container = state["bucket"].split("/")
    if flag(args, "--account-name") != account or flag(args, "--container-name") != container:
        raise Failure("ERROR: The specified container does not exist.")
    objects = state["objects"]
    name = flag(args, "--name")
    if what == "container immutability-policy show":
        if state["azure"]["policy"] is None:
            raise Failure("ERROR: (ContainerImmutabilityPolicyNotFound) The immutability policy is not found.")
        return state["azure"]["policy"]
    if what == "blob exists":
        return {"exists": name in objects}
    if what == "blob upload":
        if name in objects and flag(args, "--overwrite") != "true":
            raise Failure("ERROR: The specified blob already exists.")
        put(state, str(name), Path(flag(args, "--file") or "").read_bytes())
        return {"etag": '"x"'}
    if what == "blob list":
        start = flag(args, "--prefix") or ""
        return [{"name": k} for k in sorted(objects) if k.startswith(start)]
    if what == "blob download":
        if name not in objects:
            raise Failure("ERROR: The specified blob does not exist.")
        Path(flag(args, "--file") or "").write_bytes(base64.b64decode(objects[name]["body"]))
        return {"name": name}
    raise Failure(f"unknown az storage command {what}")


def main() -> int:
    tool, args = sys.argv[1], sys.argv[2:]
    path = Path(os.environ["FAKE_CLOUD_STATE"])
    state = json.loads(path.read_text())
    state["calls"].append([tool, *args])
    code = 0
    try:
        answer = {"aws": aws, "gcloud": gcloud, "az": az}[tool](state, args)
        if answer is not None:
            print(json.dumps(answer, indent=2))
    except Failure as exc:
        print(f"\n{exc}", file=sys.stderr)
        code = 254 if tool == "aws" else 1
    path.write_text(json.dumps(state, indent=1))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
