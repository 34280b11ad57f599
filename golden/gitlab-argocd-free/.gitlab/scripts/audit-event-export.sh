#!/usr/bin/env bash
# PP-EVID-04: one day of the project's audit trail as one JSON array, for the object-locked store.
#   EXPORT_KIND=audit_events  GET /projects/:id/audit_events (GitLab Premium and Ultimate): who changed
#                             settings, protection, members, variables, approvals
#   EXPORT_KIND=events        GET /projects/:id/events (every tier; GitLab Free has no audit-events API):
#                             pushes, merges, approvals, comments - the fallback, not an audit log
# Environment: CI_PROJECT_ID; SINCE (YYYY-MM-DD, the UTC day to export); OUT (file); EXPORT_KIND;
#   GITLAB_API_URL, PIPEPROOF_API_TOKEN (api.sh; the token needs read_api and, for audit events, Maintainer).
# Follows every page. Fails closed on any API error; nothing is written unless the export is complete. A
# quiet day is an empty array, said so in the log.
# Exit: 0 exported; 1 an API error; 2 bad environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=api.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"

require_env CI_PROJECT_ID SINCE OUT EXPORT_KIND
require_uint CI_PROJECT_ID
[[ ${SINCE} =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || {
  error "SINCE must be a date as YYYY-MM-DD, got '${SINCE}'"
  exit 2
}
until=$(date -u -d "${SINCE} + 1 day" +%Y-%m-%d) || {
  error "SINCE is not a date: '${SINCE}'"
  exit 2
}
rm -f -- "${OUT}"
case ${EXPORT_KIND} in
  audit_events) path="projects/${CI_PROJECT_ID}/audit_events?created_after=${SINCE}T00:00:00Z&created_before=${until}T00:00:00Z" ;;
  # `after` and `before` are exclusive dates.
  events) path="projects/${CI_PROJECT_ID}/events?after=$(date -u -d "${SINCE} - 1 day" +%Y-%m-%d)&before=${until}&sort=asc" ;;
  *)
    error "EXPORT_KIND must be audit_events or events, got '${EXPORT_KIND}'"
    exit 2
    ;;
esac
api_paginate "${path}" >"${PP_TMP}/page.json"
# created_before is inclusive: an event at midnight would land in two days. Keep exactly the day SINCE (UTC);
# a timestamp that is not UTC ISO 8601 fails rather than being filed under a guessed day.
jq -e 'all(.[]; (.created_at | type == "string") and (.created_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$")))' \
  "${PP_TMP}/page.json" >/dev/null || die "GET /${path%%\?*}: an event without a UTC created_at timestamp"
jq --arg day "${SINCE}" 'map(select(.created_at[0:10] == $day))' "${PP_TMP}/page.json" >"${PP_TMP}/events.json"
count=$(jq length "${PP_TMP}/events.json")
mv -- "${PP_TMP}/events.json" "${OUT}"
gh_output events "${count}"
if ((count == 0)); then
  echo "::warning::no ${EXPORT_KIND} for project ${CI_PROJECT_ID} on ${SINCE}: an empty day is exported as []" >&2
fi
echo "exported ${count} ${EXPORT_KIND} of project ${CI_PROJECT_ID} on ${SINCE} to ${OUT}"
