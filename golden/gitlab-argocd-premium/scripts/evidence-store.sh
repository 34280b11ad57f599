#!/usr/bin/env bash
# The evidence store, one interface over the aws, gcloud and az CLIs, for ship-evidence.sh and
# verify-evidence.sh. Source it after evidence-lib.sh, never run it. Every function fails closed: an answer
# that is not the one expected is an error, never a pass.
#
#   store_init             checks the environment below (exit 2 when it is bad)
#   store_preflight        dies unless the store has the lock mode, retention and versioning promised:
#     aws    get-object-lock-configuration: enabled, COMPLIANCE, default retention >= the days promised (Years
#            count 365 days each); get-bucket-versioning: Enabled
#     gcp    buckets describe: retention_policy.isLocked true, retentionPeriod >= the days promised
#     azure  container immutability-policy show: state Locked, immutabilityPeriodSinceCreationInDays >= the days
#   store_absent KEY       dies unless the store answers that KEY does not exist (any other answer is an error)
#   store_write FILE KEY   writes a new object and dies if the store would replace one: aws put-object
#                          --if-none-match '*' with its SHA-256 checksum; gcp cp --if-generation-match=0; azure
#                          upload --overwrite false
#   store_object_ok KEY T  prints why not and returns 1 unless KEY exists and is locked until at least epoch T
#                          plus the days promised (aws: COMPLIANCE mode and ObjectLockRetainUntilDate; gcp:
#                          retention_expiration_time; azure: the container's locked policy, checked by preflight)
#   store_list PREFIX      prints every key under PREFIX, one a line
#   store_fetch KEY FILE   downloads KEY into FILE
#
# Environment:
#   EVIDENCE_STORE           aws | gcp | azure
#   EVIDENCE_BUCKET          S3 / GCS bucket name; Azure: storage-account/container
#   EVIDENCE_REGION          AWS region of the bucket (aws only)
#   EVIDENCE_RETENTION_DAYS  the retention the answers promise, in days (evidence_retention_years x 365)
#   EVIDENCE_RESOURCE_GROUP  Azure resource group of the storage account (optional: az looks it up)
set -euo pipefail

store_init() {
  require_env EVIDENCE_STORE EVIDENCE_BUCKET EVIDENCE_RETENTION_DAYS
  require_uint EVIDENCE_RETENTION_DAYS
  ((EVIDENCE_RETENTION_DAYS >= 1)) || {
    error "$(basename -- "$0"): EVIDENCE_RETENTION_DAYS must be at least 1, got '${EVIDENCE_RETENTION_DAYS}'"
    exit 2
  }
  case ${EVIDENCE_STORE} in
    aws) require_env EVIDENCE_REGION ;;
    gcp) ;;
    azure)
      [[ ${EVIDENCE_BUCKET} =~ ^[a-z0-9]{3,24}/[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$ ]] || {
        error "$(basename -- "$0"): EVIDENCE_BUCKET must be storage-account/container for azure, got '${EVIDENCE_BUCKET}'"
        exit 2
      }
      ;;
    *)
      error "$(basename -- "$0"): EVIDENCE_STORE must be aws, gcp or azure, got '${EVIDENCE_STORE}'"
      exit 2
      ;;
  esac
  STORE_BUCKET=${EVIDENCE_BUCKET}
  STORE_DAYS=${EVIDENCE_RETENTION_DAYS}
  STORE_ACCOUNT=${STORE_BUCKET%%/*}
  STORE_CONTAINER=${STORE_BUCKET#*/}
}

store_cli() { # OUT_FILE COMMAND...: a cloud CLI; on failure one line naming the command and the CLI's message
  local out=$1
  shift
  if ! "$@" >"${out}" 2>"${PP_TMP}/cli.err"; then
    STORE_CLI_ERROR="$1 $2 $3 failed: $(grep -v '^[[:space:]]*$' "${PP_TMP}/cli.err" | tail -n 1)"
    return 1
  fi
}

store__until() { # WHERE DATE NOT_BEFORE: prints why and returns 1 unless DATE >= NOT_BEFORE + days
  local end need=$(($3 + STORE_DAYS * 86400))
  if [[ $2 == none ]]; then
    echo "$1 has no retention: it is not locked"
    return 1
  fi
  if ! end=$(date -u -d "$2" +%s 2>/dev/null); then
    echo "$1: retention end '$2' is not a date"
    return 1
  fi
  if ((end < need)); then
    echo "$1 is retained only until $2, less than the ${STORE_DAYS} days promised (until $(date -u -d "@${need}" +%Y-%m-%dT%H:%M:%SZ))"
    return 1
  fi
}

store_preflight() { "${EVIDENCE_STORE}__preflight"; }
store_absent() { "${EVIDENCE_STORE}__absent" "$1"; }
store_write() { "${EVIDENCE_STORE}__write" "$1" "$2"; }
store_object_ok() { "${EVIDENCE_STORE}__object_ok" "$1" "$2"; }
store_list() { "${EVIDENCE_STORE}__list" "$1"; }
store_fetch() { "${EVIDENCE_STORE}__fetch" "$1" "$2"; }

# --- aws -------------------------------------------------------------------------------------------------------
aws__s3api() { # OUT SUBCOMMAND ARGS...
  local out=$1 sub=$2
  shift 2
  store_cli "${out}" aws s3api "${sub}" --bucket "${STORE_BUCKET}" --region "${EVIDENCE_REGION}" --output json "$@"
}

aws__preflight() {
  local out="${PP_TMP}/lock.json" mode period where="s3://${STORE_BUCKET}"
  aws__s3api "${out}" get-object-lock-configuration ||
    die "${where}: ${STORE_CLI_ERROR}; refusing to ship to a store that may not be locked"
  jq -e '.ObjectLockConfiguration.ObjectLockEnabled == "Enabled"' "${out}" >/dev/null 2>&1 ||
    die "${where}: Object Lock is not enabled"
  mode=$(jq -r '.ObjectLockConfiguration.Rule.DefaultRetention.Mode // "none"' "${out}")
  [[ ${mode} == COMPLIANCE ]] ||
    die "${where}: the default retention mode is ${mode}, not COMPLIANCE (GOVERNANCE can be bypassed)"
  period=$(jq -r '.ObjectLockConfiguration.Rule.DefaultRetention | (.Days // 0) + (.Years // 0) * 365' "${out}")
  ((period >= STORE_DAYS)) ||
    die "${where}: the default retention is ${period} days, less than the ${STORE_DAYS} days promised"
  aws__s3api "${out}" get-bucket-versioning || die "${where}: ${STORE_CLI_ERROR}"
  jq -e '.Status == "Enabled"' "${out}" >/dev/null 2>&1 ||
    die "${where}: versioning is not Enabled ($(jq -r '.Status // "never enabled"' "${out}" 2>/dev/null))"
  echo "${where}: Object Lock COMPLIANCE, ${period} days, versioning Enabled"
}

aws__absent() {
  if aws__s3api "${PP_TMP}/head.json" head-object --key "$1"; then
    die "s3://${STORE_BUCKET}/$1 already exists: evidence is never overwritten"
  fi
  # Only a 404 means absent (the writer may list the bucket, so S3 answers 404 rather than 403).
  [[ ${STORE_CLI_ERROR} =~ \((404|NoSuchKey)\)|Not\ Found ]] ||
    die "s3://${STORE_BUCKET}/$1 could not be checked: ${STORE_CLI_ERROR}"
}

aws__write() {
  local checksum
  checksum=$(openssl dgst -sha256 -binary "$1" | base64)
  # --if-none-match '*': S3 refuses the write when the key exists (the bucket policy demands it too).
  store_cli "${PP_TMP}/put.json" aws s3api put-object --bucket "${STORE_BUCKET}" --region "${EVIDENCE_REGION}" \
    --output json --key "$2" --body "$1" --checksum-algorithm SHA256 --checksum-sha256 "${checksum}" \
    --if-none-match '*' ||
    die "s3://${STORE_BUCKET}/$2 was not written: ${STORE_CLI_ERROR}"
}

aws__object_ok() {
  local out="${PP_TMP}/head.json" where="s3://${STORE_BUCKET}/$1" mode
  if ! aws__s3api "${out}" head-object --key "$1"; then
    echo "${where}: ${STORE_CLI_ERROR}"
    return 1
  fi
  mode=$(jq -r '.ObjectLockMode // "no lock"' "${out}")
  if [[ ${mode} != COMPLIANCE ]]; then
    echo "${where} is not locked in COMPLIANCE mode (${mode})"
    return 1
  fi
  store__until "${where}" "$(jq -r '.ObjectLockRetainUntilDate // "none"' "${out}")" "$2"
}

aws__list() {
  local out="${PP_TMP}/list.json"
  # The CLI follows continuation tokens itself and prints one document.
  aws__s3api "${out}" list-objects-v2 --prefix "$1" || die "s3://${STORE_BUCKET}/$1: ${STORE_CLI_ERROR}"
  jq -r '(.Contents // [])[].Key' "${out}"
}

aws__fetch() {
  aws__s3api "${PP_TMP}/get.json" get-object --key "$1" "$2" || die "s3://${STORE_BUCKET}/$1: ${STORE_CLI_ERROR}"
}

# --- gcp -------------------------------------------------------------------------------------------------------
gcp__preflight() {
  local out="${PP_TMP}/bucket.json" period where="gs://${STORE_BUCKET}"
  store_cli "${out}" gcloud storage buckets describe "${where}" --format=json ||
    die "${where}: ${STORE_CLI_ERROR}; refusing to ship to a store that may not be locked"
  jq -e '.retention_policy.isLocked == true' "${out}" >/dev/null 2>&1 ||
    die "${where}: the retention policy is missing or not locked (Bucket Lock)"
  period=$(jq -r '.retention_policy.retentionPeriod // 0 | tonumber' "${out}")
  ((period >= STORE_DAYS * 86400)) ||
    die "${where}: the retention period is ${period} s, less than the ${STORE_DAYS} days promised"
  echo "${where}: retention policy locked, ${period} s"
}

gcp__absent() {
  if store_cli "${PP_TMP}/head.json" gcloud storage objects describe "gs://${STORE_BUCKET}/$1" --format=json; then
    die "gs://${STORE_BUCKET}/$1 already exists: evidence is never overwritten"
  fi
  [[ ${STORE_CLI_ERROR} =~ [Nn]ot\ found|404|No\ URLs\ matched ]] ||
    die "gs://${STORE_BUCKET}/$1 could not be checked: ${STORE_CLI_ERROR}"
}

gcp__write() {
  # --if-generation-match=0: the upload fails when the object already exists.
  store_cli "${PP_TMP}/cp.out" gcloud storage cp --if-generation-match=0 "$1" "gs://${STORE_BUCKET}/$2" ||
    die "gs://${STORE_BUCKET}/$2 was not written: ${STORE_CLI_ERROR}"
}

gcp__object_ok() {
  local out="${PP_TMP}/object.json" where="gs://${STORE_BUCKET}/$1"
  if ! store_cli "${out}" gcloud storage objects describe "${where}" --format=json; then
    echo "${where}: ${STORE_CLI_ERROR}"
    return 1
  fi
  store__until "${where}" "$(jq -r '.retention_expiration_time // "none"' "${out}")" "$2"
}

gcp__list() {
  local out="${PP_TMP}/list.json"
  if ! store_cli "${out}" gcloud storage objects list "gs://${STORE_BUCKET}/$1**" --format=json; then
    # gcloud answers an empty listing with an error: "The following URLs matched no objects or files".
    grep -q 'matched no objects or files' "${PP_TMP}/cli.err" || die "gs://${STORE_BUCKET}/$1: ${STORE_CLI_ERROR}"
    return 0
  fi
  jq -r '.[].name' "${out}"
}

gcp__fetch() {
  store_cli "${PP_TMP}/cp.out" gcloud storage cp "gs://${STORE_BUCKET}/$1" "$2" ||
    die "gs://${STORE_BUCKET}/$1: ${STORE_CLI_ERROR}"
}

# --- azure -----------------------------------------------------------------------------------------------------
azure__blob() { # OUT SUBCOMMAND ARGS...
  local out=$1 sub=$2
  shift 2
  store_cli "${out}" az storage blob "${sub}" --auth-mode login --account-name "${STORE_ACCOUNT}" \
    --container-name "${STORE_CONTAINER}" --output json "$@"
}

azure__preflight() {
  local out="${PP_TMP}/policy.json" period group=() where="${STORE_ACCOUNT}/${STORE_CONTAINER}"
  [[ -z ${EVIDENCE_RESOURCE_GROUP:-} ]] || group=(--resource-group "${EVIDENCE_RESOURCE_GROUP}")
  store_cli "${out}" az storage container immutability-policy show --account-name "${STORE_ACCOUNT}" \
    --container-name "${STORE_CONTAINER}" "${group[@]}" --output json ||
    die "${where}: ${STORE_CLI_ERROR}; refusing to ship to a store that may not be locked"
  jq -e '.state == "Locked"' "${out}" >/dev/null 2>&1 ||
    die "${where}: the time-based immutability policy is $(jq -r '.state // "missing"' "${out}" 2>/dev/null || echo missing), not Locked"
  period=$(jq -r '.immutabilityPeriodSinceCreationInDays // 0' "${out}")
  ((period >= STORE_DAYS)) ||
    die "${where}: the immutability period is ${period} days, less than the ${STORE_DAYS} days promised"
  echo "${where}: immutability policy Locked, ${period} days"
}

azure__exists() { # KEY: sets AZ_EXISTS to true or false; returns 1 on any other answer
  local out="${PP_TMP}/exists.json"
  AZ_EXISTS=''
  azure__blob "${out}" exists --name "$1" || return 1
  AZ_EXISTS=$(jq -r '.exists' "${out}" 2>/dev/null) || AZ_EXISTS=''
  [[ ${AZ_EXISTS} == true || ${AZ_EXISTS} == false ]] || {
    STORE_CLI_ERROR="az answered $(head -c 200 "${out}")"
    return 1
  }
}

azure__absent() {
  local where="${STORE_ACCOUNT}/${STORE_CONTAINER}/$1"
  azure__exists "$1" || die "${where} could not be checked: ${STORE_CLI_ERROR}"
  [[ ${AZ_EXISTS} == false ]] || die "${where} already exists: evidence is never overwritten"
}

azure__write() {
  # --overwrite false: the upload fails when the blob exists; the locked policy forbids it anyway.
  store_cli "${PP_TMP}/upload.json" az storage blob upload --auth-mode login --account-name "${STORE_ACCOUNT}" \
    --container-name "${STORE_CONTAINER}" --output json --name "$2" --file "$1" --overwrite false --only-show-errors ||
    die "${STORE_ACCOUNT}/${STORE_CONTAINER}/$2 was not written: ${STORE_CLI_ERROR}"
}

azure__object_ok() {
  local where="${STORE_ACCOUNT}/${STORE_CONTAINER}/$1"
  if ! azure__exists "$1"; then
    echo "${where}: ${STORE_CLI_ERROR}"
    return 1
  fi
  if [[ ${AZ_EXISTS} != true ]]; then
    echo "${where} does not exist"
    return 1
  fi
}

azure__list() {
  local out="${PP_TMP}/list.json"
  azure__blob "${out}" list --prefix "$1" --num-results '*' || die "${STORE_ACCOUNT}/${STORE_CONTAINER}/$1: ${STORE_CLI_ERROR}"
  jq -r '.[].name' "${out}"
}

azure__fetch() {
  azure__blob "${PP_TMP}/download.json" download --name "$1" --file "$2" --only-show-errors ||
    die "${STORE_ACCOUNT}/${STORE_CONTAINER}/$1: ${STORE_CLI_ERROR}"
}
