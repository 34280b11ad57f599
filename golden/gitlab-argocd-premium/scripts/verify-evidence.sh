#!/usr/bin/env bash
# PP-EVID-05: the daily proof that retention holds. Asserts the store's lock mode, retention and versioning
# (store_preflight in evidence-store.sh), then finds every run manifest stored on DAY (the manifests sit one level
# under each commit: <project>/<yyyy>/<mm>/<dd>/<sha>/<name>.json) and checks that the manifest and every object
# it lists exist and are locked until at least the manifest's created_at + EVIDENCE_RETENTION_DAYS. Writes the
# result to OUT, pass or fail, so the record of a failed check is kept too; the job ships OUT as evidence.
#
# Environment (no platform variable is read; the caller maps its own):
#   EVIDENCE_STORE, EVIDENCE_BUCKET, EVIDENCE_REGION, EVIDENCE_RETENTION_DAYS, EVIDENCE_RESOURCE_GROUP
#                 as for ship-evidence.sh
#   PROJECT       the project slug, the first segment of every key
#   DAY           the day to verify, YYYY-MM-DD (default: yesterday, UTC)
#   OUT           file: {schema: pipeproof/evidence-verification/v1, project, day, store, bucket, retention_days,
#                 checked_at, store: "<what preflight saw>", manifests: [{key, objects, problems}], objects,
#                 problems: [...], result: pass|fail}
# A day without a manifest passes with manifests: [] (nothing was shipped that day); the store's own settings
# are still asserted.
# Exit: 0 every object found and locked; 1 the store's settings, a missing or unlocked object, a manifest that is
# not one, or a CLI error; 2 bad environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=evidence-lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/evidence-lib.sh"
# shellcheck source-path=SCRIPTDIR source=evidence-store.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/evidence-store.sh"

store_init
require_env PROJECT OUT
[[ ${PROJECT} =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ && ${PROJECT} != *..* ]] || {
  error "verify-evidence.sh: PROJECT must be a slug (letters, digits, '.', '_', '-'), got '${PROJECT}'"
  exit 2
}
day=${DAY:-$(date -u -d 'yesterday' +%Y-%m-%d)}
if [[ ! ${day} =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || ! date -u -d "${day}" +%s >/dev/null 2>&1; then
  error "verify-evidence.sh: DAY must be a date YYYY-MM-DD, got '${day}'"
  exit 2
fi
rm -f -- "${OUT}"
prefix="${PROJECT}/${day//-//}/"
: >"${PP_TMP}/problems"
: >"${PP_TMP}/manifests.jsonl"

record() { # RESULT STORE_SEEN
  jq -n --arg project "${PROJECT}" --arg day "${day}" --arg store "${EVIDENCE_STORE}" \
    --arg bucket "${EVIDENCE_BUCKET}" --argjson days "${EVIDENCE_RETENTION_DAYS}" --arg result "$1" \
    --arg seen "$2" --arg checked "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --slurpfile manifests "${PP_TMP}/manifests.jsonl" --rawfile problems "${PP_TMP}/problems" \
    '{schema: "pipeproof/evidence-verification/v1", project: $project, day: $day, store: $store,
      bucket: $bucket, retention_days: $days, checked_at: $checked, store_settings: $seen,
      manifests: $manifests, objects: ($manifests | map(.objects) | add // 0),
      problems: ($problems | split("\n") | map(select(length > 0))), result: $result}' >"${OUT}"
}

# The store's settings first: a store that is not locked as promised fails the day, recorded.
if ! seen=$(store_preflight 2>"${PP_TMP}/preflight.err"); then
  sed -n 's/^::error:://p' "${PP_TMP}/preflight.err" >>"${PP_TMP}/problems"
  [[ -s ${PP_TMP}/problems ]] || echo "the store's settings could not be read" >>"${PP_TMP}/problems"
  record fail ''
  die "$(head -n 1 "${PP_TMP}/problems")"
fi

# Subshells die alone: a failed listing must still fail the day.
keys=$(store_list "${prefix}" 2>"${PP_TMP}/list.err") || {
  sed -n 's/^::error:://p' "${PP_TMP}/list.err" >>"${PP_TMP}/problems"
  record fail "${seen}"
  die "the objects of ${day} could not be listed: $(head -n 1 "${PP_TMP}/problems")"
}
printf '%s\n' "${keys}" | grep -E "^${prefix//./\\.}[0-9a-f]{7,64}/[^/]+\\.json\$" >"${PP_TMP}/manifest-keys" || true

n=0
while IFS= read -r -u 3 key; do
  n=$((n + 1))
  copy="${PP_TMP}/manifest-${n}.json"
  problems=()
  if ! (store_fetch "${key}" "${copy}") 2>"${PP_TMP}/fetch.err"; then
    problems+=("${key} could not be read: $(sed -n 's/^::error:://p' "${PP_TMP}/fetch.err" | head -n 1)")
  elif ! jq -e '.schema == "pipeproof/evidence-manifest/v1" and (.created_at | type == "string")
                and (.files | type == "array")' "${copy}" >/dev/null 2>&1; then
    problems+=("${key} is not an evidence manifest")
  else
    created=$(jq -r '.created_at' "${copy}")
    if ! since=$(date -u -d "${created}" +%s 2>/dev/null); then
      problems+=("${key}: created_at '${created}' is not a date")
    else
      while IFS= read -r -u 4 object; do
        problem=$(store_object_ok "${object}" "${since}") || problems+=("${problem}")
      done 4< <(jq -r --arg key "${key}" '.files[].object_key, $key' "${copy}")
    fi
  fi
  objects=$(jq -r '(.files // []) | length + 1' "${copy}" 2>/dev/null || echo 1)
  printf '%s\n' "${problems[@]+"${problems[@]}"}" | grep -v '^$' >>"${PP_TMP}/problems" || true
  jq -cn --arg key "${key}" --argjson objects "${objects}" --args '{key: $key, objects: $objects, problems: $ARGS.positional}' \
    "${problems[@]+"${problems[@]}"}" >>"${PP_TMP}/manifests.jsonl"
done 3<"${PP_TMP}/manifest-keys"

if [[ -s ${PP_TMP}/problems ]]; then
  record fail "${seen}"
  while IFS= read -r line; do error "${line}"; done <"${PP_TMP}/problems"
  die "evidence of ${day}: $(wc -l <"${PP_TMP}/problems") problem(s) in ${n} manifest(s)"
fi
record pass "${seen}"
echo "evidence of ${day}: ${n} manifest(s), $(jq -r .objects "${OUT}") object(s), every one present and locked (${seen})"
