#!/usr/bin/env bash
# PP-ARGO-04: one day of Argo CD's syncs, as GitLab recorded them. Argo CD's notifications
# (argocd/argocd-notifications-cm.yaml) create a GitLab deployment of the environment for each sync that
# succeeds or fails, at the synced revision (POST /projects/:id/deployments); this copies every deployment of
# each environment updated that day (UTC) into one record, kept beside the deployment records.
#
# Environment:
#   CI_PROJECT_ID   this project
#   SINCE           YYYY-MM-DD: deployments updated from SINCE 00:00Z to the next day 00:00Z (excluded)
#   ENVIRONMENTS    space-separated environment names (default "staging production")
#   RECORD_OUT      the record to write (schema pipeproof/argocd-sync-record/v1): {schema, since, until,
#                   environments: {NAME: [{id, iid, sha, ref, status, created_at, updated_at, user}], ...}},
#                   each list oldest update first; a day without syncs is a record of empty lists
#   GITLAB_API_URL, PIPEPROOF_API_TOKEN   as for every script here (api.sh)
# Output (PP_OUTPUT): DEPLOYMENTS, how many the record holds.
# Exit: 0 written; 1 an API error or an answer that is not a list of deployments (nothing is written);
# 2 bad environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=api.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"

require_env CI_PROJECT_ID SINCE RECORD_OUT
require_uint CI_PROJECT_ID
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
for environment in "${environments[@]}"; do
  path="projects/${CI_PROJECT_ID}/deployments?environment=$(uri "${environment}")&updated_after=${SINCE}T00:00:00Z&updated_before=${until}T00:00:00Z&order_by=updated_at&sort=asc"
  api_paginate "${path}" >"${PP_TMP}/deployments.json"
  jq -e --arg env "${environment}" 'all(.[];
      (.id | numbers) and (.sha | strings | test("^[0-9a-f]{40}$")) and (.environment.name == $env)
      and (.updated_at | strings | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$")))' "${PP_TMP}/deployments.json" >/dev/null ||
    die "GET /projects/${CI_PROJECT_ID}/deployments?environment=${environment}: not a list of ${environment} deployments with a sha and a UTC updated_at"
  # The API's bounds are not documented as exclusive: keep exactly the day, so no deployment lands in two.
  jq --arg env "${environment}" --arg since "${SINCE}T00:00:00" --arg until "${until}T00:00:00" \
    --slurpfile d "${PP_TMP}/deployments.json" '
    .[$env] = ($d[0] | map(select(.updated_at[:19] >= $since and .updated_at[:19] < $until))
      | sort_by(.updated_at, .id)
      | map({id, iid, sha, ref, status, created_at, updated_at, user: (.user.username // null)}))' \
    "${PP_TMP}/record.json" >"${PP_TMP}/next.json"
  mv -f -- "${PP_TMP}/next.json" "${PP_TMP}/record.json"
done

jq --arg since "${SINCE}" --arg until "${until}" \
  '{schema: "pipeproof/argocd-sync-record/v1", since: $since, until: $until, environments: .}' \
  "${PP_TMP}/record.json" >"${PP_TMP}/out.json"
mv -f -- "${PP_TMP}/out.json" "${RECORD_OUT}"
count=$(jq '[.environments[] | length] | add // 0' "${RECORD_OUT}")
gh_output DEPLOYMENTS "${count}"
echo "sync record ${RECORD_OUT}: ${SINCE}, $(jq -r '.environments | to_entries | map("\(.key) \(.value | length)") | join(", ")' "${RECORD_OUT}") deployment(s)"
