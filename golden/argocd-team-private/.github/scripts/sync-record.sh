#!/usr/bin/env bash
# PP-ARGO-04: one JSON record per Argo CD sync report. Argo CD's notifications (argocd/argocd-notifications-cm.yaml)
# create a GitHub deployment for each sync that succeeds or fails and each degradation, at the synced revision;
# this copies that deployment and every one of its statuses, as GitHub returns them, into the record: Argo CD's
# sync history of the environment, kept beside the deployment records.
#
# Environment:
#   REPO           owner/name
#   DEPLOYMENT_ID  the deployment of the deployment_status event
#   RECORD_OUT     the record to write (schema pipeproof/argocd-sync-record/v1)
# Exit: 0 written; 1 an API error, or a deployment without statuses (nothing is written); 2 bad environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=api.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"

require_env REPO DEPLOYMENT_ID RECORD_OUT
require_uint DEPLOYMENT_ID
rm -f -- "${RECORD_OUT}"

api_get "repos/${REPO}/deployments/${DEPLOYMENT_ID}" >"${PP_TMP}/deployment.json"
jq -e '(.sha | type == "string") and (.environment | type == "string")' "${PP_TMP}/deployment.json" >/dev/null ||
  die "GET /repos/${REPO}/deployments/${DEPLOYMENT_ID} is not a deployment with a sha and an environment"
api_paginate "repos/${REPO}/deployments/${DEPLOYMENT_ID}/statuses" >"${PP_TMP}/statuses.json"
jq -e 'length > 0' "${PP_TMP}/statuses.json" >/dev/null ||
  die "deployment ${DEPLOYMENT_ID} has no statuses: there is no sync to record"

jq -n --slurpfile d "${PP_TMP}/deployment.json" --slurpfile s "${PP_TMP}/statuses.json" '
  $d[0] as $d | ($s[0] | sort_by(.id)) as $s
  | {schema: "pipeproof/argocd-sync-record/v1",
     environment: $d.environment, revision: $d.sha, deployment_id: $d.id,
     reported_by: ($d.creator.login // null), created_at: $d.created_at,
     state: ($s | last | .state),
     history: ($s | map({id, state, description, log_url, created_at, creator: (.creator.login // null)}))}' >"${RECORD_OUT}"
gh_output state "$(jq -r '.state' "${RECORD_OUT}")"
echo "sync record ${RECORD_OUT}: $(jq -r '"\(.environment) \(.revision) \(.state), \(.history | length) status(es)"' "${RECORD_OUT}")"
