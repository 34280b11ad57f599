#!/usr/bin/env bash
# PP-DEPLOY-03: production takes a commit only when every required check passed in this very run.
#
# Environment:
#   REPO             owner/name
#   SHA              the commit to deploy
#   RUN_ID           this workflow run: its check suite holds the re-run checks ("checks / sast", ...)
#   REQUIRED_CHECKS  check-run names, one a line
#   CHECKS_OUT       optional file: JSON [{name, status, conclusion, id, completed_at}] of the required checks,
#                    written also when the gate fails (a check that never reported has null fields)
# Exit: 0 every required check completed with success; 1 a check did not, or an API error; 2 bad environment.
#
# Only check runs of GitHub Actions (app slug github-actions; its id differs on GHES) in this run's check suite
# count, so a status posted under the same name by anyone with write access, or a check from an older run,
# cannot stand in. Of several runs with one name (a re-run job) the newest, the highest id, decides. Only
# conclusion "success" passes: skipped, neutral, cancelled, timed_out, stale, action_required, startup_failure,
# failure, a check still queued or in progress, and a missing check all stop the deploy.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=api.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"

require_env REPO SHA RUN_ID REQUIRED_CHECKS
require_uint RUN_ID
if [[ -n ${CHECKS_OUT:-} ]]; then rm -f -- "${CHECKS_OUT}"; fi

required=$(printf '%s\n' "${REQUIRED_CHECKS}" |
  jq -R -s 'split("\n") | map(sub("^\\s+"; "") | sub("\\s+$"; "") | select(length > 0)) | reduce .[] as $n ([]; if index([$n]) then . else . + [$n] end)')
[[ ${required} != '[]' ]] || die "REQUIRED_CHECKS names no check: a gate with nothing to check passes nothing"

api_get "repos/${REPO}/actions/runs/${RUN_ID}" >"${PP_TMP}/run.json"
IFS=$'\t' read -r suite run_sha < <(jq -r '[(.check_suite_id // "" | tostring), (.head_sha // "-")] | @tsv' "${PP_TMP}/run.json")
[[ ${suite} =~ ^[0-9]+$ ]] || die "GET /repos/${REPO}/actions/runs/${RUN_ID}: the run has no check_suite_id"
[[ ${run_sha} == "${SHA}" ]] || die "workflow run ${RUN_ID} ran on commit ${run_sha}, not ${SHA}: its checks say nothing about ${SHA}"

api_paginate "repos/${REPO}/commits/${SHA}/check-runs?filter=all" check_runs >"${PP_TMP}/check-runs.json"

# One verdict per required name: the newest GitHub Actions run in this suite, and what else carries the name.
jq --argjson suite "${suite}" --argjson required "${required}" '
  . as $all
  | ($all | map(select(.check_suite.id == $suite and .app.slug == "github-actions"))
          | group_by(.name) | map(max_by(.id)) | map({key: .name, value: .}) | from_entries) as $mine
  | $required | map(. as $name | $mine[$name] as $r
      | {name: $name, status: $r.status, conclusion: $r.conclusion, id: $r.id, completed_at: $r.completed_at,
         elsewhere: ($all | map(select(.name == $name and ((.check_suite.id == $suite and .app.slug == "github-actions") | not)))
                          | map("\(.app.slug // "unknown app") in check suite \(.check_suite.id)") | unique)})
' "${PP_TMP}/check-runs.json" >"${PP_TMP}/verdicts.json"

if [[ -n ${CHECKS_OUT:-} ]]; then
  jq 'map(del(.elsewhere))' "${PP_TMP}/verdicts.json" >"${CHECKS_OUT}"
fi

failed=0 passed=0
# Fields joined by US (0x1f): unlike a tab, read keeps an empty field empty.
while IFS=$'\x1f' read -r name status conclusion elsewhere; do
  if [[ ${status} == completed && ${conclusion} == success ]]; then
    echo "ok: ${name} (success)"
    passed=$((passed + 1))
    continue
  fi
  failed=$((failed + 1))
  case ${status} in
    '')
      hint=''
      [[ -z ${elsewhere} ]] || hint="; only found from ${elsewhere}, which does not count"
      gh_error "required check '${name}' is missing: GitHub Actions reported no check run of that name for ${SHA} in run ${RUN_ID}${hint}"
      ;;
    completed) gh_error "required check '${name}' concluded '${conclusion}' on ${SHA}; only success passes" ;;
    *) gh_error "required check '${name}' is ${status}, not completed, on ${SHA}" ;;
  esac
done < <(jq -r '.[] | [.name, (.status // ""), (.conclusion // ""), (.elsewhere | join(", "))] | join("\u001f")' "${PP_TMP}/verdicts.json")

if ((failed)); then
  die "${failed} required check(s) have not passed on ${SHA}: production is blocked"
fi
echo "all ${passed} required checks passed on ${SHA} in run ${RUN_ID}"
