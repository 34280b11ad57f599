#!/usr/bin/env bash
# GitLab REST helpers for the scripts next to this file. Source it, never run it:
#   . "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"
#
#   api_get PATH             one GET; prints the JSON body
#   api_paginate PATH        every page (Link rel="next", offset or keyset); prints one JSON array
#   api_send METHOD PATH FILE  one POST or PUT with FILE as the JSON body; prints the JSON object answered.
#                            Retried only where GitLab cannot have acted on it (see api__fetch): a write is
#                            not idempotent, so a 5xx or a timeout fails (closed) at once
#   push_branch URL BRANCH   force-push HEAD to BRANCH of the repository at URL with PIPEPROOF_API_TOKEN
#
# PATH is relative to the API (projects/ID/...) or a full URL under it. Every function fails closed: on any
# error it prints one ::error:: line (method, path, HTTP status, the API's message) and returns 1, so
# `x=$(api_get ...)` stops a script running under `set -e`. Nothing else in these scripts calls curl.
#
# Environment:
#   GITLAB_API_URL          https://<host>/api/v4 (the pipeline sets it from the rendered host); in GitLab CI
#                           (CI_SERVER_HOST set) its host and port must be this GitLab's (CI_SERVER_HOST,
#                           CI_SERVER_PORT): a token never leaves the instance the job runs on
#   PIPEPROOF_API_TOKEN     a project access token (read_api), a protected and masked CI/CD variable; sent as
#                           the PRIVATE-TOKEN header through curl's stdin, never on a command line or in a URL,
#                           and never to a URL outside GITLAB_API_URL (a Link header cannot redirect it)
#   PIPEPROOF_API_TIMEOUT   seconds one request may take (default 30)
#   PIPEPROOF_API_ATTEMPTS  tries per request on 429, 5xx and network errors (default 4; writes: see api_send)
#   PIPEPROOF_API_MAX_WAIT  seconds the waits between tries of one request may add up to (default 60)
#   PIPEPROOF_API_BACKOFF   first wait when the API names none, doubled per try (default 2)
#   PIPEPROOF_API_MAX_PAGES pages api_paginate follows before it gives up (default 1000)
set -euo pipefail
# error, die, require_env, require_uint: scripts/ is at the repository root in every render.
# shellcheck source-path=SCRIPTDIR source=../../scripts/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

PP_TMP=$(mktemp -d "${TMPDIR:-/tmp}/pipeproof.XXXXXX")
trap 'rm -rf -- "${PP_TMP}"' EXIT

# The names the shared scripts (deployment-record.sh, written for both platforms) call. GitLab has no step
# outputs: PP_OUTPUT, when set, collects KEY=VALUE lines (a dotenv report).
gh_error() { error "$@"; }
gh_output() { # KEY VALUE
  if [[ -n ${PP_OUTPUT:-} ]]; then
    [[ $2 != *$'\n'* ]] || die "output $1 must be one line"
    printf '%s=%s\n' "$1" "$2" >>"${PP_OUTPUT}"
  fi
}

# Token host pinning. GitLab CI sets CI_SERVER_HOST (host only) and CI_SERVER_PORT to this instance's: a URL
# from the environment (a pipeline variable a Developer may set) must not carry a token anywhere else.
this_gitlab() { # URL [host]: 0 when CI_SERVER_HOST is unset (not in CI) or URL is an http(s) URL of this GitLab:
  # its host, and unless `host` is given its port too (default: the scheme's), are CI_SERVER_HOST's (CI_SERVER_PORT)
  local url=${1,,} authority host port default
  [[ -n ${CI_SERVER_HOST:-} ]] || return 0
  [[ ${url} =~ ^(https?)://([^/?#]*) ]] || return 1
  authority=${BASH_REMATCH[2]}
  default=443
  [[ ${BASH_REMATCH[1]} == https ]] || default=80
  if [[ ${authority} =~ ^(.*):([0-9]+)$ ]]; then
    host=${BASH_REMATCH[1]} port=${BASH_REMATCH[2]}
  else
    host=${authority} port=${default}
  fi
  [[ ${host} == "${CI_SERVER_HOST,,}" ]] || return 1
  [[ ${2:-} == host || ${port} == "${CI_SERVER_PORT:-${default}}" ]]
}

require_this_gitlab() { # NAME: exit 2 unless the variable, when an http(s) URL (the token goes with it), is on
  # this GitLab's host; a path or another transport carries no token
  if [[ ${!1,,} =~ ^https?:// ]] && ! this_gitlab "${!1}" host; then
    error "$(basename -- "$0"): $1 must be a URL on this GitLab (host ${CI_SERVER_HOST}), got '${!1%%\?*}': the write token never leaves it"
    exit 2
  fi
}

api__setup() {
  local n
  if [[ ! ${GITLAB_API_URL:-} =~ ^https?://[^/]+/api/v4/?$ ]]; then
    error "GITLAB_API_URL must be the API's URL (https://HOST/api/v4), got '${GITLAB_API_URL:-}'"
    return 1
  fi
  if ! this_gitlab "${GITLAB_API_URL}"; then
    error "GITLAB_API_URL must be this GitLab's API (host ${CI_SERVER_HOST}${CI_SERVER_PORT:+, port ${CI_SERVER_PORT}}), got '${GITLAB_API_URL}': refusing to send the token to another host"
    return 1
  fi
  # curl's config syntax would need " and \ escaped; no GitLab token contains them, or whitespace.
  if [[ -z ${PIPEPROOF_API_TOKEN:-} || ${PIPEPROOF_API_TOKEN} =~ [[:space:][:cntrl:]\"\\] ]]; then
    error "PIPEPROOF_API_TOKEN is missing or is not a token: add a project access token (read_api) as a protected, masked CI/CD variable"
    return 1
  fi
  for n in PIPEPROOF_API_TIMEOUT PIPEPROOF_API_ATTEMPTS PIPEPROOF_API_MAX_WAIT PIPEPROOF_API_BACKOFF PIPEPROOF_API_MAX_PAGES; do
    if [[ -n ${!n:-} && ! ${!n} =~ ^[0-9]+$ ]]; then
      error "${n} must be a whole number of seconds or tries, got '${!n}'"
      return 1
    fi
  done
}

api__url() { # PATH: the full URL; refuses one outside the API, so the token goes nowhere else
  local path=$1 base=${GITLAB_API_URL%/}
  case ${path} in
    "${base}"/*) printf '%s\n' "${path}" ;;
    *://*)
      error "refusing to send the token to ${path%%\?*}: it is outside GITLAB_API_URL (${base})"
      return 1
      ;;
    *) printf '%s/%s\n' "${base}" "${path#/}" ;;
  esac
}

api__header() { # FILE NAME: one response header's value
  local line name value
  while IFS= read -r line || [[ -n ${line} ]]; do
    line=${line%$'\r'}
    name=${line%%:*}
    value=${line#*:}
    value=${value#"${value%%[![:space:]]*}"}
    if [[ ${name,,} == "${2,,}" ]]; then
      printf '%s\n' "${value}"
      return 0
    fi
  done <"$1"
}

api__message() { # BODY_FILE: the API's message (GitLab: message or error), or the start of a body
  local msg
  msg=$(jq -r 'if type == "object" then ((.message // .error // empty) | if type == "string" then . else tojson end) else empty end' "$1" 2>/dev/null) || msg=''
  [[ -n ${msg} ]] || msg=$(head -c 200 "$1" | tr '\r\n' '  ')
  printf '%s\n' "${msg:-(empty body)}"
}

api__curl() { # URL BODY_FILE HEADERS_FILE [METHOD JSON_FILE]: prints the HTTP status; the token reaches curl on stdin only
  local send=()
  if (($# > 3)); then send=(--request "$4" --header 'Content-Type: application/json' --data-binary "@$5"); fi
  printf 'header = "PRIVATE-TOKEN: %s"\n' "${PIPEPROOF_API_TOKEN}" |
    curl --config - --silent --show-error --globoff \
      --connect-timeout 10 --max-time "${PIPEPROOF_API_TIMEOUT:-30}" \
      --header 'Accept: application/json' --user-agent pipeproof-scripts "${send[@]}" \
      --dump-header "$3" --output "$2" --write-out '%{http_code}' -- "$1"
}

# GitLab answers 429 with Retry-After (and RateLimit-Reset); 5xx and network errors back off. A write (METHOD
# other than GET) is retried only where GitLab cannot have acted on it, so a retry cannot open a second merge
# request: the connection was refused (curl exit 7: nothing was sent), or the rate limiter turned it away
# with a 429 that names its Retry-After.
api__fetch() { # URL BODY_FILE [METHOD JSON_FILE]: one request with bounded retries; headers land in BODY_FILE.headers
  local url=$1 body=$2 method=${3:-GET}
  local headers="$2.headers" err="$2.err" shown="${method} ${1#"${GITLAB_API_URL%/}"}"
  local attempts=${PIPEPROOF_API_ATTEMPTS:-4} budget=${PIPEPROOF_API_MAX_WAIT:-60} backoff=${PIPEPROOF_API_BACKOFF:-2}
  local attempt=0 waited=0 code detail delay retry_after rc expect=.
  shown=${shown%%\?*}
  [[ ${method} == GET ]] || expect='type == "object"'
  while :; do
    attempt=$((attempt + 1))
    : >"${headers}"
    detail=''
    code=$(api__curl "${url}" "${body}" "${headers}" "${@:3}" 2>"${err}") && rc=0 || rc=$?
    if ((rc)); then
      code=000
      detail="no response: $(tail -n 1 "${err}")"
    fi
    if [[ ${code} == 2[0-9][0-9] ]]; then
      if [[ ! -s ${body} ]] || ! jq -e "${expect}" "${body}" >/dev/null 2>&1; then
        error "GitLab API ${shown} failed: HTTP ${code} with a body that is not the JSON expected"
        return 1
      fi
      return 0
    fi
    [[ -n ${detail} ]] || detail="HTTP ${code}: $(api__message "${body}")"
    retry_after=$(api__header "${headers}" retry-after)
    delay=''
    case ${code} in
      000 | 429 | 500 | 502 | 503 | 504) delay=$((backoff << (attempt - 1))) ;;
    esac
    if [[ ${method} != GET && ! (${rc} == 7 || (${code} == 429 && ${retry_after} =~ ^[0-9]+$)) ]]; then
      delay=''
    fi
    if [[ -z ${delay} ]]; then
      error "GitLab API ${shown} failed: ${detail}"
      return 1
    fi
    if [[ ${retry_after} =~ ^[0-9]+$ ]]; then delay=${retry_after}; fi
    if ((attempt >= attempts)); then
      error "GitLab API ${shown} failed after ${attempt} attempts: ${detail}"
      return 1
    fi
    if ((waited + delay > budget)); then
      error "GitLab API ${shown} failed: ${detail}; a retry would have to wait ${delay} s, more than the $((budget - waited)) s left to wait (PIPEPROOF_API_MAX_WAIT)"
      return 1
    fi
    printf 'GitLab API %s: %s; retrying in %s s (attempt %s of %s)\n' "${shown}" "${detail}" "${delay}" "$((attempt + 1))" "${attempts}" >&2
    sleep "${delay}"
    waited=$((waited + delay))
  done
}

api_get() { # PATH: one GET; prints the JSON body
  local url body
  api__setup || return 1
  url=$(api__url "$1") || return 1
  body="${PP_TMP}/get.${BASHPID}.${RANDOM}"
  api__fetch "${url}" "${body}" || return 1
  cat -- "${body}"
}

api_send() { # METHOD PATH JSON_FILE: one POST or PUT; prints the JSON object answered
  local url body
  api__setup || return 1
  [[ $1 == POST || $1 == PUT ]] || {
    error "api_send: METHOD must be POST or PUT, got '$1'"
    return 1
  }
  jq -e . "$3" >/dev/null 2>&1 || {
    error "api_send: $3 is not a JSON file"
    return 1
  }
  url=$(api__url "$2") || return 1
  body="${PP_TMP}/send.${BASHPID}.${RANDOM}"
  api__fetch "${url}" "${body}" "$1" "$3" || return 1
  cat -- "${body}"
}

api_paginate() { # PATH: every page; prints one JSON array
  local path=$1 dir page count=0 max=${PIPEPROOF_API_MAX_PAGES:-1000} seen=' ' link next url
  local re='<([^>]*)>;[[:space:]]*rel="next"'
  api__setup || return 1
  case ${path} in
    *'?per_page='* | *'&per_page='*) ;;
    *'?'*) path="${path}&per_page=100" ;;
    *) path="${path}?per_page=100" ;;
  esac
  dir="${PP_TMP}/pages.${BASHPID}.${RANDOM}"
  mkdir -- "${dir}"
  while [[ -n ${path} ]]; do
    count=$((count + 1))
    if ((count > max)); then
      error "GitLab API GET ${1%%\?*}: more than ${max} pages (PIPEPROOF_API_MAX_PAGES); refusing a partial list"
      return 1
    fi
    printf -v page '%s/%06d.json' "${dir}" "${count}"
    url=$(api__url "${path}") || return 1
    api__fetch "${url}" "${page}" || return 1
    link=$(api__header "${page}.headers" link)
    next=''
    if [[ ${link} =~ ${re} ]]; then next=${BASH_REMATCH[1]}; fi
    if [[ -n ${next} && ${seen} == *" ${next} "* ]]; then
      error "GitLab API GET ${1%%\?*}: the next-page link of page ${count} points back to an earlier page"
      return 1
    fi
    seen+="${next} "
    path=${next}
  done
  if ! jq -s 'to_entries | map(.key as $n | .value | if type == "array" then . else error("page \($n + 1) is not a JSON array") end) | add // []' \
    "${dir}"/*.json 2>"${dir}/err"; then
    error "GitLab API GET ${1%%\?*}: $(sed 's/^jq: error ([^)]*): //' "${dir}/err" | head -n 1)"
    return 1
  fi
}

# The token reaches git through the environment (GIT_CONFIG_*: never argv, never the URL) as an extra header
# for URL's host only. GitLab takes a project access token as the password of HTTP basic auth, any user name.
push_branch() { # URL BRANCH: force-push HEAD to BRANCH (a branch only the pipeline writes)
  local url=$1 branch=$2
  api__setup || return 1
  if [[ ${url,,} =~ ^https?:// ]] && ! this_gitlab "${url}" host; then
    error "refusing to push with the token to ${url%%\?*}: it is not on this GitLab (${CI_SERVER_HOST})"
    return 1
  fi
  if ! (
    export GIT_TERMINAL_PROMPT=0
    if [[ ${url} =~ ^(https?://[^/]+)/ ]]; then
      export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0="http.${BASH_REMATCH[1]}/.extraheader"
      GIT_CONFIG_VALUE_0="Authorization: Basic $(printf 'pipeproof:%s' "${PIPEPROOF_API_TOKEN}" | openssl base64 -A)"
      export GIT_CONFIG_VALUE_0
    fi
    git push --quiet --force -- "${url}" "HEAD:refs/heads/${branch}" 2>"${PP_TMP}/push.err"
  ); then
    error "git push of ${branch} to ${url} failed: $(tail -n 1 "${PP_TMP}/push.err")"
    return 1
  fi
}

uri() { # TEXT: URL-encoded, for a path segment or a query value
  jq -rn --arg v "$1" '$v | @uri'
}

# The production job's state file (production.env: KEY=VALUE lines it writes as it goes), read as data, never
# sourced: only these keys, each checked; a variable already set in the environment wins.
STATE_KEYS='DEPLOY_STARTED STARTED_AT DEPLOYER PREVIOUS_SHA DEPLOY_OUTCOME HEALTH_OUTCOME'
read_state() { # FILE: sets the STATE_KEYS it holds; returns 1 (naming the line) on anything else
  local line key value n=0
  while IFS= read -r line || [[ -n ${line} ]]; do
    n=$((n + 1))
    [[ -n ${line} ]] || continue
    key=${line%%=*}
    value=${line#*=}
    [[ ${line} == *=* && " ${STATE_KEYS} " == *" ${key} "* ]] || {
      error "$1:${n}: not one of ${STATE_KEYS// /, }"
      return 1
    }
    case ${key} in
      DEPLOY_STARTED) [[ ${value} =~ ^[01]$ ]] ;;
      PREVIOUS_SHA) [[ -z ${value} || ${value} =~ ^[0-9a-f]{40}$ ]] ;;
      DEPLOY_OUTCOME | HEALTH_OUTCOME) [[ ${value} == success ]] ;;
      STARTED_AT) [[ ${value} =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]] ;;
      DEPLOYER) [[ ${value} =~ ^[A-Za-z0-9_.-]{0,255}$ ]] ;;
    esac || {
      error "$1:${n}: ${key} has an unexpected value"
      return 1
    }
    # The last line for a key wins (the job appends as it goes); the environment wins over the file.
    if [[ -z ${!key+set} || ${PP_STATE_SET:-} == *" ${key} "* ]]; then
      printf -v "${key}" '%s' "${value}"
      export "${key?}"
      PP_STATE_SET="${PP_STATE_SET:- }${key} "
    fi
  done <"$1"
}
