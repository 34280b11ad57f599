#!/usr/bin/env bash
# PP-EVID-02: the manifest of the scan results kept as evidence: every file's SHA-256, size, kind and the object
# key it is stored under, so the deployment record can name exactly what was kept, and where.
#
# Environment:
#   DIR           the downloaded artifacts, one folder per artifact
#   PROJECT       the project slug, the first segment of every key (letters, digits, '.', '_', '-')
#   SHA           the commit the evidence is about (hexadecimal)
#   RUN_ID        the pipeline run (GitHub run id, GitLab pipeline id), a whole number
#   RUN_ATTEMPT   its attempt (GitHub run attempt; GitLab: 1), a whole number
#   MANIFEST_OUT  file: {schema: pipeproof/evidence-manifest/v1, project, sha, run_id, run_attempt, created_at,
#                 manifest_key, files: [{kind, artifact, file, size, sha256, object_key}]}
# kind is the artifact's folder name without its "-<commit sha>-<run attempt>" suffix (sast-<sha>-1 -> sast).
# object_key is <PROJECT>/<yyyy>/<mm>/<dd>/<SHA>/<kind>-<RUN_ID>-<attempt>/<file> (UTC date; attempt is the
# one the artifact's name carries, else RUN_ATTEMPT, so the reports of every attempt of a re-run job are kept
# side by side; file is the path inside the artifact). manifest_key, where ship-evidence.sh stores the manifest
# itself, is <PROJECT>/<yyyy>/<mm>/<dd>/<SHA>/<name>-<RUN_ID>-<RUN_ATTEMPT>.json, name being MANIFEST_OUT's file
# name without .json: the daily verify-evidence.sh finds a day's manifests one level under each SHA.
# Exit: 0 written; 1 no file to keep ("no scan results to keep"), a file outside an artifact folder, or two
# files that would land on one object key; 2 bad environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=evidence-lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/evidence-lib.sh"

require_env DIR PROJECT SHA RUN_ID RUN_ATTEMPT MANIFEST_OUT
require_uint RUN_ID
require_uint RUN_ATTEMPT
# The key's segments: nothing in them may add a '/' or a '..' segment to the layout.
[[ ${PROJECT} =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ && ${PROJECT} != *..* ]] || {
  error "evidence-manifest.sh: PROJECT must be a slug (letters, digits, '.', '_', '-'), got '${PROJECT}'"
  exit 2
}
[[ ${SHA} =~ ^[0-9a-f]{7,64}$ ]] || {
  error "evidence-manifest.sh: SHA must be a commit SHA (hexadecimal), got '${SHA}'"
  exit 2
}
name=$(basename -- "${MANIFEST_OUT}" .json)
[[ ${name} =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || {
  error "evidence-manifest.sh: MANIFEST_OUT's file name must be a slug ending .json, got '${MANIFEST_OUT}'"
  exit 2
}
rm -f -- "${MANIFEST_OUT}"
dir=${DIR%/}
[[ -d ${dir} ]] || die "no scan results to keep: ${DIR} is not a folder"

now=$(date -u +%s)
day=$(date -u -d "@${now}" +%Y/%m/%d)
: >"${PP_TMP}/files.jsonl"
while IFS= read -r -d '' path; do
  rel=${path#"${dir}"/}
  artifact=${rel%%/*}
  [[ ${artifact} != "${rel}" ]] || die "${rel} is not inside an artifact folder of ${DIR}"
  file=${rel#*/}
  if [[ ${artifact} =~ ^(.+)-[0-9a-f]{7,40}-([0-9]+)$ ]]; then
    kind=${BASH_REMATCH[1]}
    attempt=${BASH_REMATCH[2]}
  else
    kind=${artifact}
    attempt=${RUN_ATTEMPT}
  fi
  sha256=$(sha256sum <"${path}" | cut -d ' ' -f 1)
  size=$(stat -c %s -- "${path}")
  jq -cn --arg kind "${kind}" --arg artifact "${artifact}" --arg file "${file}" --argjson size "${size}" \
    --arg sha256 "${sha256}" --arg key "${PROJECT}/${day}/${SHA}/${kind}-${RUN_ID}-${attempt}/${file}" \
    '{kind: $kind, artifact: $artifact, file: $file, size: $size, sha256: $sha256, object_key: $key}' \
    >>"${PP_TMP}/files.jsonl"
done < <(find "${dir}" -type f -print0 | sort -z)

count=$(jq -s length "${PP_TMP}/files.jsonl")
((count > 0)) || die "no scan results to keep: ${DIR} holds no file"
clash=$(jq -rs 'group_by(.object_key) | map(select(length > 1) | map(.artifact + "/" + .file) | join(" and ")) | .[0] // empty' \
  "${PP_TMP}/files.jsonl")
[[ -z ${clash} ]] || die "${clash} would be stored under one object key: keep one artifact per kind"

jq -s --arg project "${PROJECT}" --arg sha "${SHA}" --arg run_id "${RUN_ID}" --arg attempt "${RUN_ATTEMPT}" \
  --arg created "$(date -u -d "@${now}" +%Y-%m-%dT%H:%M:%SZ)" \
  --arg key "${PROJECT}/${day}/${SHA}/${name}-${RUN_ID}-${RUN_ATTEMPT}.json" \
  '{schema: "pipeproof/evidence-manifest/v1", project: $project, sha: $sha, run_id: $run_id,
    run_attempt: $attempt, created_at: $created, manifest_key: $key, files: .}' "${PP_TMP}/files.jsonl" >"${MANIFEST_OUT}"
echo "evidence manifest ${MANIFEST_OUT}: ${count} file(s)"
jq -r '.files[] | "\(.sha256)  \(.object_key)"' "${MANIFEST_OUT}"
