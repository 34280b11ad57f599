#!/usr/bin/env bash
# PP-ARGO-04: one day of Argo CD's syncs, as GitLab recorded them. Argo CD's notifications
# (argocd/argocd-notifications-cm.yaml) create a GitLab deployment of the environment for each sync that
# succeeds or fails, at the synced revision (POST /projects/:id/deployments); this copies every deployment of
# each environment updated that day (UTC) into one record, kept beside the deployment records.
# Only Argo CD reports to these environments: no CI job of the Argo CD pipeline deploys to them. A deployment
# counts as a sync report only when it was created through the API (no `deployable` job) by ARGOCD_REPORTER;
# any other (one a CI job created, or one someone else posted: a Developer can) is an anomaly, recorded apart
# with why, and fails the job once the record is written.
#
# Environment:
#   CI_PROJECT_ID   this project
#   ARGOCD_REPORTER the username of the bot user of Argo CD's notifications token (a project access token)
#   SINCE           YYYY-MM-DD: deployments updated from SINCE 00:00Z to the next day 00:00Z (excluded)
#   ENVIRONMENTS    space-separated environment names (default "staging production")
#   RECORD_OUT      the record to write (schema pipeproof/argocd-sync-record/v1): {schema, since, until,
#                   environments: {NAME: [{id, iid, sha, ref, status, created_at, updated_at, user}], ...},
#                   anomalies: [{environment, the same fields, deployable: {id, name, pipeline_id} or null,
#                   why}]}, each list oldest update first; a day without syncs is a record of empty lists
#   GITLAB_API_URL, PIPEPROOF_API_TOKEN   as for every script here (api.sh)
# Output (PP_OUTPUT): DEPLOYMENTS, how many syncs the record holds; ANOMALIES, how many anomalies.
# Exit: 0 written, no anomaly; 1 written with anomalies (named), or an API error or an answer that is not a
# list of deployments (nothing is written); 2 bad environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=api.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"

require_env CI_PROJECT_ID SINCE RECORD_OUT ARGOCD_REPORTER
require_uint CI_PROJECT_ID
[[ ${ARGOCD_REPORTER} =~ ^[A-Za-z0-9_.-]{1,255}$ ]] || {
  error "sync-record.sh: ARGOCD_REPORTER must be a GitLab username (the bot user of Argo CD's notifications token), got '${ARGOCD_REPORTER}'"
  exit 2
}
[[ ${SINCE} =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ && $(date -u -d "${SINCE}" +%Y-%m-%d 2>/dev/null) == "${SINCE}" ]] || {
  error "sync-record.sh: SINCE must be a date as YYYY-MM-DD, got '${SINCE}'"
  exit 2
}
until=$(date -u -d "${SINCE} + 1 day" +%Y-%m-%d)
read -r -a environments <<<"${ENVIRONMENTS:-staging production}"
((${#environments[@]})) || {
  error "sync-record.sh: ENVIRONMENTS names no environment"
  exit 2
}
rm -f -- "${RECORD_OUT}"

echo '{}' >"${PP_TMP}/record.json"
echo '[]' >"${PP_TMP}/anomalies.json"
for environment in "${environments[@]}"; do
  path="projects/${CI_PROJECT_ID}/deployments?environment=$(uri "${environment}")&updated_after=${SINCE}T00:00:00Z&updated_before=${until}T00:00:00Z&order_by=updated_at&sort=asc"
  api_paginate "${path}" >"${PP_TMP}/deployments.json"
  jq -e --arg env "${environment}" 'all(.[];
      (.id | numbers) and (.sha | strings | test("^[0-9a-f]{40}$")) and (.environment.name == $env)
      and has("deployable") and (.deployable | type == "null" or type == "object")
      and (.updated_at | strings | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$")))' "${PP_TMP}/deployments.json" >/dev/null ||
    die "GET /projects/${CI_PROJECT_ID}/deployments?environment=${environment}: not a list of ${environment} deployments with a sha, a deployable and a UTC updated_at"
  # The API's bounds are not documented as exclusive: keep exactly the day, so no deployment lands in two.
  # A sync report: created through the API (deployable null) by ARGOCD_REPORTER. Anything else is an anomaly.
  jq --arg env "${environment}" --arg since "${SINCE}T00:00:00" --arg until "${until}T00:00:00" \
    --arg reporter "${ARGOCD_REPORTER}" --slurpfile d "${PP_TMP}/deployments.json" --slurpfile a "${PP_TMP}/anomalies.json" '
    def row: {id, iid, sha, ref, status, created_at, updated_at, user: (.user.username // null)};
    def why: if .deployable != null then
        "created by CI job \(.deployable.name // "?") #\(.deployable.id // "?") (pipeline \(.deployable.pipeline.id // "?"), user \(.user.username // "unknown")): no job of the Argo CD pipeline deploys to \($env); only Argo CD reports there, through the API"
      else "created through the API by \(.user.username // "an unknown user"), not by ARGOCD_REPORTER \($reporter): not a report of Argo CD" end;
    def is_sync: .deployable == null and ((.user.username // "") | ascii_downcase) == ($reporter | ascii_downcase);
    ($d[0] | map(select(.updated_at[:19] >= $since and .updated_at[:19] < $until)) | sort_by(.updated_at, .id)) as $day
    | {record: (.[$env] = ($day | map(select(is_sync) | row))),
       anomalies: ($a[0] + ($day | map(select(is_sync | not) | {environment: $env} + row
         + {deployable: (.deployable | if . == null then null else {id, name, pipeline_id: (.pipeline.id // null)} end), why: why})))}' \
    "${PP_TMP}/record.json" >"${PP_TMP}/next.json"
  jq '.record' "${PP_TMP}/next.json" >"${PP_TMP}/record.json"
  jq '.anomalies' "${PP_TMP}/next.json" >"${PP_TMP}/anomalies.json"
done

jq --arg since "${SINCE}" --arg until "${until}" --slurpfile a "${PP_TMP}/anomalies.json" \
  '{schema: "pipeproof/argocd-sync-record/v1", since: $since, until: $until, environments: ., anomalies: $a[0]}' \
  "${PP_TMP}/record.json" >"${PP_TMP}/out.json"
mv -f -- "${PP_TMP}/out.json" "${RECORD_OUT}"
count=$(jq '[.environments[] | length] | add // 0' "${RECORD_OUT}")
anomalies=$(jq '.anomalies | length' "${RECORD_OUT}")
gh_output DEPLOYMENTS "${count}"
gh_output ANOMALIES "${anomalies}"
echo "sync record ${RECORD_OUT}: ${SINCE}, $(jq -r '.environments | to_entries | map("\(.key) \(.value | length)") | join(", ")' "${RECORD_OUT}") sync(s) reported by ${ARGOCD_REPORTER}, ${anomalies} anomaly(ies)"
if ((anomalies)); then
  while IFS= read -r line; do error "${line}"; done < <(jq -r '.anomalies[]
    | "\(.environment) deployment \(.id) (\(.sha[:12]), \(.updated_at)): \(.why)" | gsub("[\r\n]"; " ")' "${RECORD_OUT}")
  die "${anomalies} deployment(s) of ${environments[*]} on ${SINCE} are not Argo CD's sync reports (a forgery, or a deploy outside GitOps): see anomalies in ${RECORD_OUT}"
fi
