#!/usr/bin/env bash
# PP-EVID-02: ship the files of an evidence manifest, then the manifest itself, to the object-locked evidence
# store, on any CI platform, after the job's own OIDC login (GitHub: the ship-evidence action; GitLab: the job's
# id_tokens). Fails closed: before writing anything it asserts that the store holds the lock mode, retention and
# versioning the answers promise (store_preflight in evidence-store.sh), that no key exists yet, and that every
# file still has the SHA-256 the manifest lists; each object written must then read back locked until at least
# now + EVIDENCE_RETENTION_DAYS. The manifest goes last: a manifest in the store means every file it lists was
# shipped and confirmed.
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
# the manifest's own manifest_key <project>/<yyyy>/<mm>/<dd>/<sha>/<name>-<run>-<attempt>.json.
# Exit: 0 every object written and confirmed; 1 the store is not what was promised, a key exists, a file
# changed since the manifest, or a CLI failed; 2 bad environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=evidence-lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/evidence-lib.sh"
# shellcheck source-path=SCRIPTDIR source=evidence-store.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/evidence-store.sh"

store_init
require_env MANIFEST DIR
[[ -f ${MANIFEST} ]] || die "the evidence manifest ${MANIFEST} is missing"
jq -e '.schema == "pipeproof/evidence-manifest/v1" and (.manifest_key | type == "string")
       and (.files | type == "array" and length > 0)' "${MANIFEST}" >/dev/null 2>&1 ||
  die "${MANIFEST} is not an evidence manifest with files (evidence-manifest.sh writes one)"

start=$(date -u +%s)
store_preflight

dir=${DIR%/}
jq -r '.files[] | [.artifact + "/" + .file, .object_key, .sha256] | @tsv' "${MANIFEST}" >"${PP_TMP}/files.tsv"
manifest_key=$(jq -r '.manifest_key' "${MANIFEST}")
# Every file and key checked before the first write, so nothing is left half shipped.
while IFS=$'\t' read -r -u 3 rel key sha256; do
  [[ -f "${dir}/${rel}" ]] || die "${dir}/${rel} is in the manifest but not on disk"
  [[ $(sha256sum <"${dir}/${rel}" | cut -d ' ' -f 1) == "${sha256}" ]] || die "${dir}/${rel} changed since the manifest"
  store_absent "${key}"
done 3<"${PP_TMP}/files.tsv"
store_absent "${manifest_key}"

ship() { # FILE KEY
  local problem
  store_write "$1" "$2"
  problem=$(store_object_ok "$2" "${start}") || die "${problem}"
}

count=0
while IFS=$'\t' read -r -u 3 rel key sha256; do
  ship "${dir}/${rel}" "${key}"
  count=$((count + 1))
  echo "shipped ${key} (${sha256})"
done 3<"${PP_TMP}/files.tsv"
ship "${MANIFEST}" "${manifest_key}"
echo "shipped ${manifest_key} (the manifest of ${count} file(s)) to ${EVIDENCE_STORE} ${EVIDENCE_BUCKET}"
