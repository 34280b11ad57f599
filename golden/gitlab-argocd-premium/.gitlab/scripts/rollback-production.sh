#!/usr/bin/env bash
# PP-DEPLOY-04: after a failed production job (deploy, health and version check, or timeout), put production
# back on the version before it, then write the deployment record (status rolled_back or rollback_failed).
#
# The production job leaves STATE (production.env): DEPLOY_STARTED=0 until its gates passed, then 1, and
# PREVIOUS_SHA, STARTED_AT, DEPLOYER, DEPLOY_OUTCOME/HEALTH_OUTCOME=success as each step passes.
#   DEPLOY_STARTED=0  a gate refused the deploy: production was not touched, nothing to roll back, no record.
#   no STATE at all   the job died before its artifacts were kept: whether it deployed is unknown, so
#                     production is rolled back to the last successful production deployment (GitLab's API).
#   otherwise         HOOKS/rollback.sh production PREVIOUS_SHA, then record.sh.
# Environment: STATE (default production.env); HOOKS (default ./scripts; tests point it at stand-ins); what
#   record.sh and last-production.sh need (CI_*, GITLAB_API_URL, PIPEPROOF_API_TOKEN).
# Exit: 0 rolled back and recorded, or nothing to roll back; 1 the rollback failed (the record is still
# written), the state file is malformed, or the record could not be written.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=api.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"

here=$(dirname -- "${BASH_SOURCE[0]}")
state=${STATE:-production.env}
hooks=${HOOKS:-./scripts}
if [[ -f ${state} ]]; then
  read_state "${state}" || die "${state} is not the production job's state file"
else
  echo "::warning::no ${state}: the production job left no state, so whether it deployed is unknown; rolling back to the last successful production deployment" >&2
  DEPLOY_STARTED=1
  PREVIOUS_SHA=$(bash "${here}/last-production.sh")
  export PREVIOUS_SHA
fi
if [[ ${DEPLOY_STARTED:-0} != 1 ]]; then
  echo "the production job stopped before deploying (a gate refused it): production was not touched, nothing to roll back"
  exit 0
fi

# What ran: the deploy failed if it did not report success; the health check ran only after a deploy.
export DEPLOY_OUTCOME=${DEPLOY_OUTCOME:-failure}
if [[ ${DEPLOY_OUTCOME} == success ]]; then
  export HEALTH_OUTCOME=${HEALTH_OUTCOME:-failure}
else
  export HEALTH_OUTCOME=''
fi
if "${hooks}/rollback.sh" production "${PREVIOUS_SHA:-}"; then
  export ROLLBACK_OUTCOME=success
else
  export ROLLBACK_OUTCOME=failure
  error "the rollback of production to ${PREVIOUS_SHA:-the previous version} failed: production may be down"
fi
bash "${here}/record.sh"
[[ ${ROLLBACK_OUTCOME} == success ]] || exit 1
echo "production rolled back to ${PREVIOUS_SHA:-the previous version}"
