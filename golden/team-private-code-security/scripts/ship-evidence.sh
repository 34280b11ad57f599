#!/usr/bin/env bash
# PP-EVID-02: ship the files of an evidence manifest, then the manifest itself, to the object-locked evidence
# store, on any CI platform, after the job's own OIDC login (GitHub: the ship-evidence action; GitLab: id_tokens).
# Fails closed: before writing anything it asserts that the store holds what the answers promise, and it never
# replaces an object.
#   aws    get-object-lock-configuration: enabled, COMPLIANCE mode, default retention >= EVIDENCE_RETENTION_DAYS;
#          get-bucket-versioning: Enabled. Each object: head-object must answer 404 (pre-check), put-object
#          --if-none-match '*' (S3 refuses a write over an existing key) with its SHA-256 checksum, then
#          head-object must show COMPLIANCE mode retained until at least now + EVIDENCE_RETENTION_DAYS.
#   gcp    the bucket's retention policy is locked and at least EVIDENCE_RETENTION_DAYS (a locked policy forbids
#          overwriting and deleting a retained object; GCS has no versioning to assert here). Each object: must
#          not exist, cp --if-generation-match=0 (refused when it exists), then its retention_expiration_time
#          must reach now + EVIDENCE_RETENTION_DAYS.
#   azure  the container's time-based immutability policy is Locked and at least EVIDENCE_RETENTION_DAYS (blobs
#          can be neither overwritten nor deleted while it holds). Each blob: must not exist, then upload
#          --overwrite false.
#
# Environment (no platform variable is read; the caller maps its own):
#   EVIDENCE_STORE           aws | gcp | azure
#   EVIDENCE_BUCKET          S3 / GCS bucket name; Azure: storage-account/container
#   EVIDENCE_REGION          AWS region of the bucket (aws only)
#   EVIDENCE_RETENTION_DAYS  the retention the answers promise, in days (evidence_retention_years x 365)
#   EVIDENCE_RESOURCE_GROUP  Azure resource group of the storage account (optional: az looks it up)
#   MANIFEST                 the manifest evidence-manifest.sh wrote (its files, SHA-256 and object keys)
#   DIR                      the folder it was written from
# The object keys come from the manifest: <project>/<yyyy>/<mm>/<dd>/<sha>/<kind>-<run>-<attempt>/<file>, and
# the manifest's own manifest_key.
# Exit: 0 every object written and confirmed; 1 the store is not what was promised, a key exists, a file
# changed since the manifest, or a CLI failed; 2 bad environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=evidence-lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/evidence-lib.sh"

require_env EVIDENCE_STORE EVIDENCE_BUCKET EVIDENCE_RETENTION_DAYS MANIFEST DIR
require_uint EVIDENCE_RETENTION_DAYS
((EVIDENCE_RETENTION_DAYS >= 1)) || {
  error "ship-evidence.sh: EVIDENCE_RETENTION_DAYS must be at least 1, got '${EVIDENCE_RETENTION_DAYS}'"
  exit 2
}
case ${EVIDENCE_STORE} in
  aws) require_env EVIDENCE_REGION ;;
  gcp) ;;
  azure)
    [[ ${EVIDENCE_BUCKET} =~ ^[a-z0-9]{3,24}/[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$ ]] || {
      error "ship-evidence.sh: EVIDENCE_BUCKET must be storage-account/container for azure, got '${EVIDENCE_BUCKET}'"
      exit 2
    }
    ;;
  *)
    error "ship-evidence.sh: EVIDENCE_STORE must be aws, gcp or azure, got '${EVIDENCE_STORE}'"
    exit 2
    ;;
esac
[[ -f ${MANIFEST} ]] || die "the evidence manifest ${MANIFEST} is missing"
jq -e '.schema == "pipeproof/evidence-manifest/v1" and (.manifest_key | type == "string")
       and (.files | type == "array" and length > 0)' "${MANIFEST}" >/dev/null 2>&1 ||
  die "${MANIFEST} is not an evidence manifest with files (evidence-manifest.sh writes one)"

bucket=${EVIDENCE_BUCKET}
days=${EVIDENCE_RETENTION_DAYS}
start=$(date -u +%s)
need_until=$((start + days * 86400))

cli() { # OUT_FILE COMMAND...: run a cloud CLI; on failure, one error naming the command and the CLI's message
  local out=$1
  shift
  if ! "$@" >"${out}" 2>"${PP_TMP}/cli.err"; then
    error "$1 $2 $3 failed: $(grep -v '^[[:space:]]*$' "${PP_TMP}/cli.err" | tail -n 1)"
    return 1
  fi
}

until_ok() { # WHERE DATE: the retention end DATE reaches start + days
  local end
  end=$(date -u -d "$2" +%s 2>/dev/null) || die "$1: retention end '$2' is not a date"
  ((end >= need_until)) ||
    die "$1 is retained only until $2, less than the ${days} days promised (until $(date -u -d "@${need_until}" +%Y-%m-%dT%H:%M:%SZ))"
}

# --- aws -------------------------------------------------------------------------------------------------------
aws_preflight() {
  local out="${PP_TMP}/lock.json" mode period
  cli "${out}" aws s3api get-object-lock-configuration --bucket "${bucket}" --region "${EVIDENCE_REGION}" --output json ||
    die "s3://${bucket}: no Object Lock configuration could be read; refusing to ship to a store that may not be locked"
  jq -e '.ObjectLockConfiguration.ObjectLockEnabled == "Enabled"' "${out}" >/dev/null ||
    die "s3://${bucket}: Object Lock is not enabled"
  mode=$(jq -r '.ObjectLockConfiguration.Rule.DefaultRetention.Mode // "none"' "${out}")
  [[ ${mode} == COMPLIANCE ]] ||
    die "s3://${bucket}: default retention mode is ${mode}, not COMPLIANCE (GOVERNANCE can be bypassed)"
  # Years count as 365 days each: the shortest a calendar year can be.
  period=$(jq -r '.ObjectLockConfiguration.Rule.DefaultRetention | (.Days // 0) + (.Years // 0) * 365' "${out}")
  ((period >= days)) ||
    die "s3://${bucket}: default retention is ${period} days, less than the ${days} days promised"
  cli "${out}" aws s3api get-bucket-versioning --bucket "${bucket}" --region "${EVIDENCE_REGION}" --output json ||
    die "s3://${bucket}: versioning could not be read"
  jq -e '.Status == "Enabled"' "${out}" >/dev/null 2>&1 ||
    die "s3://${bucket}: versioning is not Enabled ($(jq -r '.Status // "never enabled"' "${out}" 2>/dev/null))"
  echo "s3://${bucket}: Object Lock COMPLIANCE, ${period} days, versioning Enabled"
}

aws_absent() { # KEY: 0 when no object has KEY; dies when one does or the answer is not a 404
  if aws s3api head-object --bucket "${bucket}" --key "$1" --region "${EVIDENCE_REGION}" --output json \
    >/dev/null 2>"${PP_TMP}/head.err"; then
    die "s3://${bucket}/$1 already exists: evidence is never overwritten"
  fi
  grep -Eq '\((404|NoSuchKey)\)|Not Found' "${PP_TMP}/head.err" ||
    die "s3://${bucket}/$1 could not be checked: $(tail -n 1 "${PP_TMP}/head.err")"
}

aws_put() { # FILE KEY
  local checksum out="${PP_TMP}/put.json"
  checksum=$(openssl dgst -sha256 -binary "$1" | base64)
  # --if-none-match '*': S3 refuses the write when the key exists (the pre-check's race closed).
  cli "${out}" aws s3api put-object --bucket "${bucket}" --key "$2" --body "$1" --region "${EVIDENCE_REGION}" \
    --checksum-algorithm SHA256 --checksum-sha256 "${checksum}" --if-none-match '*' --output json ||
    die "s3://${bucket}/$2 was not written"
  cli "${out}" aws s3api head-object --bucket "${bucket}" --key "$2" --region "${EVIDENCE_REGION}" --output json ||
    die "s3://${bucket}/$2 could not be read back"
  [[ $(jq -r '.ObjectLockMode // "none"' "${out}") == COMPLIANCE ]] ||
    die "s3://${bucket}/$2 is not locked in COMPLIANCE mode ($(jq -r '.ObjectLockMode // "no lock"' "${out}"))"
  until_ok "s3://${bucket}/$2" "$(jq -r '.ObjectLockRetainUntilDate // "none"' "${out}")"
}

# --- gcp -------------------------------------------------------------------------------------------------------
gcp_preflight() {
  local out="${PP_TMP}/bucket.json" period
  cli "${out}" gcloud storage buckets describe "gs://${bucket}" --format=json ||
    die "gs://${bucket}: the bucket could not be read; refusing to ship to a store that may not be locked"
  jq -e '.retention_policy.isLocked == true' "${out}" >/dev/null 2>&1 ||
    die "gs://${bucket}: the retention policy is missing or not locked (Bucket Lock)"
  period=$(jq -r '.retention_policy.retentionPeriod // 0 | tonumber' "${out}")
  ((period >= days * 86400)) ||
    die "gs://${bucket}: the retention period is ${period} s, less than the ${days} days promised"
  echo "gs://${bucket}: retention policy locked, ${period} s"
}

gcp_absent() { # KEY
  if gcloud storage objects describe "gs://${bucket}/$1" --format=json >/dev/null 2>"${PP_TMP}/head.err"; then
    die "gs://${bucket}/$1 already exists: evidence is never overwritten"
  fi
  grep -Eqi 'not found|404|No URLs matched' "${PP_TMP}/head.err" ||
    die "gs://${bucket}/$1 could not be checked: $(tail -n 1 "${PP_TMP}/head.err")"
}

gcp_put() { # FILE KEY
  local out="${PP_TMP}/object.json"
  # --if-generation-match=0: the upload fails when the object already exists.
  cli "${out}" gcloud storage cp --if-generation-match=0 "$1" "gs://${bucket}/$2" ||
    die "gs://${bucket}/$2 was not written"
  cli "${out}" gcloud storage objects describe "gs://${bucket}/$2" --format=json ||
    die "gs://${bucket}/$2 could not be read back"
  until_ok "gs://${bucket}/$2" "$(jq -r '.retention_expiration_time // "none"' "${out}")"
}

# --- azure -----------------------------------------------------------------------------------------------------
account=${bucket%%/*}
container=${bucket#*/}
azure_preflight() {
  local out="${PP_TMP}/policy.json" period group=()
  [[ -z ${EVIDENCE_RESOURCE_GROUP:-} ]] || group=(--resource-group "${EVIDENCE_RESOURCE_GROUP}")
  cli "${out}" az storage container immutability-policy show --account-name "${account}" \
    --container-name "${container}" "${group[@]}" --output json ||
    die "${account}/${container}: the immutability policy could not be read; refusing to ship to a store that may not be locked"
  jq -e '.state == "Locked"' "${out}" >/dev/null 2>&1 ||
    die "${account}/${container}: the time-based immutability policy is $(jq -r '.state // "missing"' "${out}" 2>/dev/null || echo missing), not Locked"
  period=$(jq -r '.immutabilityPeriodSinceCreationInDays // 0' "${out}")
  ((period >= days)) ||
    die "${account}/${container}: the immutability period is ${period} days, less than the ${days} days promised"
  echo "${account}/${container}: immutability policy Locked, ${period} days"
}

azure_absent() { # KEY
  local out="${PP_TMP}/exists.json"
  cli "${out}" az storage blob exists --auth-mode login --account-name "${account}" --container-name "${container}" \
    --name "$1" --output json || die "${account}/${container}/$1 could not be checked"
  case $(jq -r '.exists' "${out}" 2>/dev/null) in
    false) ;;
    true) die "${account}/${container}/$1 already exists: evidence is never overwritten" ;;
    *) die "${account}/${container}/$1 could not be checked: az answered $(head -c 200 "${out}")" ;;
  esac
}

azure_put() { # FILE KEY
  # --overwrite false: the upload fails when the blob exists; the locked policy forbids it anyway.
  cli "${PP_TMP}/upload.json" az storage blob upload --auth-mode login --account-name "${account}" \
    --container-name "${container}" --name "$2" --file "$1" --overwrite false --only-show-errors --output json ||
    die "${account}/${container}/$2 was not written"
}

# --- ship ------------------------------------------------------------------------------------------------------
"${EVIDENCE_STORE}_preflight"

dir=${DIR%/}
jq -r '.files[] | [.artifact + "/" + .file, .object_key, .sha256] | @tsv' "${MANIFEST}" >"${PP_TMP}/files.tsv"
# Every file checked before the first write, so a changed file leaves nothing half shipped.
while IFS=$'\t' read -r rel key sha256; do
  [[ -f "${dir}/${rel}" ]] || die "${dir}/${rel} is in the manifest but not on disk"
  [[ $(sha256sum <"${dir}/${rel}" | cut -d ' ' -f 1) == "${sha256}" ]] || die "${dir}/${rel} changed since the manifest"
  "${EVIDENCE_STORE}_absent" "${key}"
done <"${PP_TMP}/files.tsv"
manifest_key=$(jq -r '.manifest_key' "${MANIFEST}")
"${EVIDENCE_STORE}_absent" "${manifest_key}"

count=0
while IFS=$'\t' read -r rel key sha256; do
  "${EVIDENCE_STORE}_put" "${dir}/${rel}" "${key}"
  count=$((count + 1))
  echo "shipped ${key} (${sha256})"
done <"${PP_TMP}/files.tsv"
# The manifest last: a manifest in the store means every file it lists was shipped and confirmed.
"${EVIDENCE_STORE}_put" "${MANIFEST}" "${manifest_key}"
echo "shipped ${manifest_key} (manifest of ${count} file(s)) to ${EVIDENCE_STORE} ${bucket}"
