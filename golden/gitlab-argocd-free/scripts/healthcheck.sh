#!/usr/bin/env bash
# PP-DEPLOY-04: the deployed service answers, and serves the version just deployed:
#   scripts/healthcheck.sh URL EXPECTED_VERSION
# Passes on a 2xx answer whose X-Version header equals EXPECTED_VERSION, or whose body contains it as a whole
# word (serve the commit SHA or release in either). A healthy service still serving another version is the old
# deploy: it keeps trying, then fails naming what it saw. A failure triggers the automatic rollback.
#
# Environment: HEALTH_ATTEMPTS (default 30), HEALTH_DELAY seconds between attempts (default 10),
#              HEALTH_TIMEOUT seconds per request (default 10). Redirects are not followed: point URL at the
#              health endpoint itself.
# Exit: 0 healthy on EXPECTED_VERSION; 1 not after every attempt; 2 bad arguments (an empty EXPECTED_VERSION
# never passes).
set -euo pipefail

error() { # one ::error:: line; % CR LF escaped as workflow commands require
  local msg=$*
  msg=${msg//'%'/%25}
  msg=${msg//$'\r'/%0D}
  msg=${msg//$'\n'/%0A}
  printf '::error::%s\n' "${msg}" >&2
}

usage='usage: healthcheck.sh URL EXPECTED_VERSION'
if (($# != 2)) || [[ -z $1 ]]; then
  error "${usage}"
  exit 2
fi
url=$1 expected=$2
if [[ -z ${expected} ]]; then
  error "healthcheck.sh: EXPECTED_VERSION is empty; a health check that does not know what it expects cannot pass"
  exit 2
fi
attempts=${HEALTH_ATTEMPTS:-30} delay=${HEALTH_DELAY:-10} timeout=${HEALTH_TIMEOUT:-10}
for n in attempts delay timeout; do
  if [[ ! ${!n} =~ ^[0-9]+$ ]]; then
    error "healthcheck.sh: HEALTH_${n^^} must be a whole number, got '${!n}'"
    exit 2
  fi
done
((attempts >= 1)) || attempts=1

tmp=$(mktemp -d)
trap 'rm -rf -- "${tmp}"' EXIT
seen=''
for ((attempt = 1; attempt <= attempts; attempt++)); do
  if code=$(curl --silent --show-error --globoff --max-time "${timeout}" --dump-header "${tmp}/headers" \
    --output "${tmp}/body" --write-out '%{http_code}' -- "${url}" 2>"${tmp}/err"); then
    if [[ ${code} == 2[0-9][0-9] ]]; then
      version=$(sed -n 's/^x-version:[[:space:]]*//Ip' "${tmp}/headers" | tr -d '\r' | tail -n 1)
      if [[ ${version} == "${expected}" ]] || grep -qwF -- "${expected}" "${tmp}/body"; then
        echo "healthy: ${url} serves ${expected} (attempt ${attempt})"
        exit 0
      fi
      if [[ -z ${version} ]]; then
        version=$(jq -r 'if type == "object" then (.version // empty) | tostring else empty end' "${tmp}/body" 2>/dev/null) || version=''
      fi
      seen="HTTP ${code}, serving ${version:-an unnamed version (no X-Version header, no version in the body)}, expected ${expected}"
    else
      seen="HTTP ${code}"
    fi
  else
    seen="no answer: $(tail -n 1 "${tmp}/err")"
  fi
  echo "attempt ${attempt}/${attempts}: ${url}: ${seen}" >&2
  if ((attempt < attempts)); then sleep "${delay}"; fi
done
error "health check failed after ${attempts} attempt(s): ${url}: ${seen}"
exit 1
