#!/usr/bin/env bash
# PP-EVID-04: the organization's audit log since SINCE, as one JSON array, for the object-locked store.
# The audit-log API exists only on GitHub Enterprise Cloud, and needs a token with read:audit_log.
#
# Environment:
#   ORG     the organization
#   SINCE   YYYY-MM-DD: events created on or after that day (UTC)
#   OUT     file: a JSON array of the events, as GitHub returned them (newest first)
#   GITHUB_TOKEN, GITHUB_API_URL  as for every script here (api.sh)
# Follows the cursor pagination (Link rel="next" carries after=...) to the end. Fails closed on any API error
# and on an empty export: the workflow that runs this creates events itself, so none means a broken export.
# Nothing is written unless the export is complete.
# Exit: 0 exported; 1 an API error or no events; 2 bad environment. Step outputs: events (how many).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=api.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"

require_env ORG SINCE OUT
[[ ${SINCE} =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || {
  gh_error "SINCE must be a date as YYYY-MM-DD, got '${SINCE}'"
  exit 2
}
rm -f -- "${OUT}"

# phrase=created:>=SINCE, URL-encoded; include=all takes web and Git events.
api_paginate "orgs/${ORG}/audit-log?phrase=created%3A%3E%3D${SINCE}&include=all&per_page=100" >"${PP_TMP}/events.json"
count=$(jq length "${PP_TMP}/events.json")
((count > 0)) || die "the audit log of ${ORG} since ${SINCE} came back empty: this workflow's own run creates events, so the export is broken"
mv -- "${PP_TMP}/events.json" "${OUT}"
gh_output events "${count}"
echo "exported ${count} audit-log event(s) of ${ORG} since ${SINCE} to ${OUT}"
