#!/usr/bin/env bash
# The helpers every pipeproof script shares, on any CI platform. Source it, never run it. scripts/ is at the
# repository root in every render, so from scripts/:
#   . "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
# and from .github/scripts or .gitlab/scripts (their api.sh):
#   . "$(dirname -- "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
#
#   annotate LEVEL MESSAGE...  one ::LEVEL:: line on stderr (GitHub turns it into an annotation; GitLab shows it
#                           as it is); % CR LF escaped so one message stays one line
#   error MESSAGE...        annotate error
#   warn MESSAGE...         annotate warning
#   die MESSAGE...          error, then exit 1
#   require_env NAME...     exit 2 naming every variable that is unset or empty
#   require_uint NAME       exit 2 unless the variable is a whole number
# Nothing here reads a platform's variables.
set -euo pipefail

annotate() { # LEVEL MESSAGE...
  local level=$1 msg
  shift
  msg=$*
  msg=${msg//'%'/%25}
  msg=${msg//$'\r'/%0D}
  msg=${msg//$'\n'/%0A}
  printf '::%s::%s\n' "${level}" "${msg}" >&2
}
error() { annotate error "$@"; }
warn() { annotate warning "$@"; }

die() { # MESSAGE...: one ::error:: line, exit 1
  error "$@"
  exit 1
}

require_env() { # NAME...: exit 2 naming every one that is unset or empty
  local name missing=()
  for name in "$@"; do
    [[ -n ${!name:-} ]] || missing+=("${name}")
  done
  if ((${#missing[@]})); then
    error "$(basename -- "$0"): missing environment variable(s): ${missing[*]}"
    exit 2
  fi
}

require_uint() { # NAME: exit 2 unless the variable is a whole number
  [[ ${!1:-} =~ ^[0-9]+$ ]] || {
    error "$(basename -- "$0"): $1 must be a whole number, got '${!1:-}'"
    exit 2
  }
}
