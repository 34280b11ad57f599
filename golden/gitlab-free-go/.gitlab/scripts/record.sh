#!/usr/bin/env bash
# PP-EVID-01: the deployment record of this pipeline's production deploy, whatever its outcome: the jobs of
# the pipeline as GitLab reports them (the checks), then deployment-record.sh (shared with GitHub) assembles
# the record from what the gates wrote (the shared scripts are symlinks in the template, so they are run
# with bash: copier renders a symlink without the executable bit): approvals, every merge request since the last deploy with its
# approvers, the evidence manifest and the SBOM of what was deployed.
#
# Environment (GitLab sets CI_*; STATE, default production.env, written by the production job, sets the rest
# unless the environment already does):
#   CI_PROJECT_ID, CI_PIPELINE_ID, CI_PIPELINE_URL, CI_COMMIT_SHA, CI_JOB_ID, ENVIRONMENT
#   DEPLOYER, STARTED_AT, PREVIOUS_SHA, APPROVAL_MODE, IMAGE
#   DEPLOY_OUTCOME, HEALTH_OUTCOME, ROLLBACK_OUTCOME   success failure cancelled skipped or ''
#   GITLAB_API_URL, PIPEPROOF_API_TOKEN   as for every script here (api.sh)
# Argo CD (DEPLOY_MODEL=argocd): CI deploys nothing; the record is of the promotion commit CI_COMMIT_SHA, after
# verify-production (promotion-check.sh, review-gate.sh) wrote approvals.json, merge-requests.json, checks.json
# (the jobs of the build and DAST pipelines: this pipeline's jobs are not listed again), sbom.spdx.json and
# evidence-manifest.json:
#   APPLICATION     the Argo CD application (<project>-production)
#   SHA, IMAGE, PREVIOUS_SHA   the candidate, as promotion-check.sh output them. SHA empty (release.json
#                   unusable, or the gate died before it read it): the record is still written, gate_failed,
#                   with sha and image null and named under "missing", and record.sh exits 1
#   GATES_OUTCOME   success when every gate of verify-production passed; failure or empty (the gates did not
#                   report success) records gate_failed
#   GITLAB_USER_LOGIN   who pushed the promotion (merged it)
# Writes records/deployment-record-<sha>-<job id>/deployment-record.json (the layout evidence-manifest.sh
# keys on; <sha> is CI_COMMIT_SHA). Exit: 0 complete; 1 an API error, or the record written with inputs
# missing; 2 bad environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=api.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"

require_env CI_PROJECT_ID CI_PIPELINE_ID CI_COMMIT_SHA CI_JOB_ID ENVIRONMENT
require_uint CI_PROJECT_ID
require_uint CI_PIPELINE_ID
require_uint CI_JOB_ID
here=$(dirname -- "${BASH_SOURCE[0]}")
if [[ -f ${STATE:-production.env} ]]; then
  read_state "${STATE:-production.env}" || die "${STATE:-production.env} is not the production job's state file"
fi

dir="records/deployment-record-${CI_COMMIT_SHA}-${CI_JOB_ID}"
case ${DEPLOY_MODEL:-} in
  argocd)
    require_env APPLICATION
    case ${GATES_OUTCOME:-} in
      success | failure | '') ;;
      *)
        error "record.sh: GATES_OUTCOME must be success, failure or empty, got '${GATES_OUTCOME}'"
        exit 2
        ;;
    esac
    unknown=0
    [[ -n ${SHA:-} ]] || {
      unknown=1
      error "record.sh: no candidate SHA (verify-production did not name it: see its log); recording gate_failed without it"
    }
    mkdir -p "${dir}"
    CANDIDATE_UNKNOWN=${unknown} SHA=${SHA:-} PROMOTION_SHA=${CI_COMMIT_SHA} GATES_OUTCOME=${GATES_OUTCOME:-failure} APPROVAL_MODE=promotion \
      ACTOR=${GITLAB_USER_LOGIN:-} RUN_URL=${CI_PIPELINE_URL:-} APPROVALS=approvals.json \
      PRS=merge-requests.json CHECKS=checks.json MANIFEST=evidence-manifest.json SBOM=sbom.spdx.json \
      RECORD_OUT="${dir}/deployment-record.json" bash "${here}/deployment-record.sh"
    exit
    ;;
  '') ;;
  *)
    error "record.sh: DEPLOY_MODEL must be argocd or empty, got '${DEPLOY_MODEL}'"
    exit 2
    ;;
esac

api_paginate "projects/${CI_PROJECT_ID}/pipelines/${CI_PIPELINE_ID}/jobs" >"${PP_TMP}/jobs.json"
jq 'map({name, stage, status, id, allow_failure, web_url, finished_at})' "${PP_TMP}/jobs.json" >checks.json

approvals=approvals.json
[[ ${APPROVAL_MODE:-} == environment ]] || approvals=merge-requests.json
mkdir -p "${dir}"
SHA=${CI_COMMIT_SHA} ACTOR=${DEPLOYER:-} RUN_URL=${CI_PIPELINE_URL:-} APPROVALS=${approvals} \
  PRS=merge-requests.json CHECKS=checks.json MANIFEST=evidence-manifest.json SBOM=sbom.spdx.json \
  RECORD_OUT="${dir}/deployment-record.json" bash "${here}/deployment-record.sh"
