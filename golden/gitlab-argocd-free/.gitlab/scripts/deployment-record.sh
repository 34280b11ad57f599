#!/usr/bin/env bash
# PP-EVID-01: one JSON record per production deploy, whatever its outcome, assembled from the files the gates
# wrote. No API calls: it records what the gates established, and nothing is approximated.
#
# Environment:
#   RECORD_OUT      the record to write (schema pipeproof/deployment-record/v2)
#   SHA, ENVIRONMENT, ACTOR, RUN_URL, STARTED_AT, PREVIOUS_SHA (empty: first deploy), IMAGE (image@sha256:...,
#   empty without containers), APPROVAL_MODE (environment | promotion)
#   DEPLOY_OUTCOME, HEALTH_OUTCOME, ROLLBACK_OUTCOME   step outcomes: success failure cancelled skipped or ''
#   APPROVALS, PRS, CHECKS, MANIFEST   JSON files from approval-check.sh, review-gate.sh, check-gate.sh and
#                   evidence-manifest.sh; SBOM   the SBOM file of what was deployed
# status: rolled_back (the rollback succeeded), rollback_failed (it failed or was cancelled), success (deploy
# and health check succeeded), cancelled (the deploy or health check was cancelled and nothing rolled back),
# failed (anything else, including a deploy that never started).
# Argo CD (DEPLOY_MODEL=argocd): CI deploys nothing; the record is of the promotion commit PROMOTION_SHA (the
# merge of the reviewed pull request Argo CD syncs production from) and APPLICATION, and its status is promoted
# (GATES_OUTCOME success: every gate passed) or gate_failed; Argo CD's syncs of it are recorded by sync-record.sh.
# CANDIDATE_UNKNOWN=1 (Argo CD only; GitLab's record.sh sets it when the gate died before it named the candidate):
# SHA and IMAGE are empty, the record is gate_failed with sha and image null and both named under "missing".
# A missing or unreadable input file is recorded as null and named under "missing"; the record is still
# written and the script then exits 1, so the job goes red.
# Exit: 0 record complete; 1 record written with inputs missing; 2 bad environment (nothing written).
# Step outputs: status, record (the file).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=api.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"

unknown=0 required=(RECORD_OUT SHA ENVIRONMENT)
if [[ ${DEPLOY_MODEL:-} == argocd && ${CANDIDATE_UNKNOWN:-} == 1 ]]; then
  unknown=1 SHA='' IMAGE='' required=(RECORD_OUT ENVIRONMENT)
fi
require_env "${required[@]}"
for name in DEPLOY_OUTCOME HEALTH_OUTCOME ROLLBACK_OUTCOME; do
  case ${!name:-} in
    success | failure | cancelled | skipped | '') ;;
    *)
      gh_error "${name} must be success, failure, cancelled, skipped or empty, got '${!name}'"
      exit 2
      ;;
  esac
done

deploy=${DEPLOY_OUTCOME:-} health=${HEALTH_OUTCOME:-} rollback=${ROLLBACK_OUTCOME:-}
gitops=null
if [[ ${DEPLOY_MODEL:-} == argocd ]]; then
  require_env PROMOTION_SHA APPLICATION GATES_OUTCOME
  [[ ${PROMOTION_SHA} =~ ^[0-9a-f]{40}$ ]] || { gh_error "PROMOTION_SHA must be a 40-character commit SHA"; exit 2; }
  gitops=$(jq -cn --arg commit "${PROMOTION_SHA}" --arg app "${APPLICATION}" \
    '{deployed_by: "argocd", promotion_commit: $commit, application: $app}')
fi
if [[ -n ${DEPLOY_MODEL:-} && ${DEPLOY_MODEL} != argocd ]]; then
  gh_error "DEPLOY_MODEL must be argocd or empty, got '${DEPLOY_MODEL}'"
  exit 2
elif [[ ${DEPLOY_MODEL:-} == argocd ]]; then
  status=$([[ ${GATES_OUTCOME} == success && ${unknown} == 0 ]] && echo promoted || echo gate_failed)
elif [[ ${rollback} == success ]]; then
  status=rolled_back
elif [[ ${rollback} == failure || ${rollback} == cancelled ]]; then
  status=rollback_failed
elif [[ ${deploy} == success && ${health} == success ]]; then
  status=success
elif [[ ${deploy} == cancelled || ${health} == cancelled ]]; then
  status=cancelled
else
  status=failed
fi

missing=()
((unknown == 0)) || missing+=(sha image)
load() { # FIELD VARIABLE JQ_TYPE_TEST: the file's JSON into $PP_TMP/FIELD.json, or null and FIELD is missing
  local field=$1 file=${!2:-}
  if [[ -n ${file} && -s ${file} ]] && jq -e "$3" "${file}" >/dev/null 2>&1; then
    jq -c . "${file}" >"${PP_TMP}/${field}.json"
  else
    gh_error "deployment record: ${2} (${file:-not set}) is missing or not the expected JSON; recording ${field} as null"
    echo null >"${PP_TMP}/${field}.json"
    missing+=("${field}")
  fi
}
load approvals APPROVALS 'type == "array" or type == "object"'
load pull_requests PRS 'type == "array"'
load checks CHECKS 'type == "array"'
load evidence MANIFEST '.files | type == "array"'

if [[ -n ${SBOM:-} && -f ${SBOM} ]]; then
  sbom_sha=$(sha256sum -- "${SBOM}" | cut -d ' ' -f 1)
  jq -n --arg file "${SBOM}" --arg sha "${sbom_sha}" '{file: $file, sha256: $sha}' >"${PP_TMP}/sbom.json"
else
  gh_error "deployment record: SBOM (${SBOM:-not set}) is missing; recording sbom as null"
  echo null >"${PP_TMP}/sbom.json"
  missing+=(sbom)
fi

jq -n \
  --arg sha "${SHA}" --arg previous "${PREVIOUS_SHA:-}" --arg image "${IMAGE:-}" --arg environment "${ENVIRONMENT}" \
  --arg status "${status}" --arg deploy "${deploy}" --arg health "${health}" --arg rollback "${rollback}" \
  --arg actor "${ACTOR:-}" --arg started "${STARTED_AT:-}" --arg finished "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  --arg run_url "${RUN_URL:-}" --arg mode "${APPROVAL_MODE:-}" --arg missing "${missing[*]}" \
  --slurpfile approvals "${PP_TMP}/approvals.json" --slurpfile prs "${PP_TMP}/pull_requests.json" \
  --slurpfile checks "${PP_TMP}/checks.json" --slurpfile manifest "${PP_TMP}/evidence.json" \
  --slurpfile sbom "${PP_TMP}/sbom.json" --argjson gitops "${gitops}" '
  def orNull: if . == "" then null else . end;
  {schema: "pipeproof/deployment-record/v2",
   sha: ($sha | orNull), previous_sha: ($previous | orNull), image: ($image | orNull), environment: $environment,
   status: $status,
   outcomes: {deploy: ($deploy | orNull), health: ($health | orNull), rollback: ($rollback | orNull)},
   deployed_by: ($actor | orNull), started_at: ($started | orNull), finished_at: $finished,
   run_url: ($run_url | orNull),
   approval: {mode: ($mode | orNull), approvals: $approvals[0]},
   pull_requests: $prs[0],
   checks: $checks[0],
   evidence: ($manifest[0] | if . == null then null else .files | map({kind, file, sha256, object_key}) end),
   sbom: $sbom[0],
   missing: ($missing | split(" ") | map(select(length > 0)))}
  | if $gitops == null then . else . + {gitops: $gitops} end' >"${RECORD_OUT}"

gh_output status "${status}"
gh_output record "${RECORD_OUT}"
echo "deployment record ${RECORD_OUT}: ${ENVIRONMENT} ${SHA:-(candidate unknown)} ${status}"
if ((${#missing[@]})); then
  die "the deployment record is incomplete: ${missing[*]} missing"
fi
