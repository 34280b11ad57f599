#!/usr/bin/env bash
# Helpers for the evidence scripts next to this file, on any CI platform. Source it, never run it:
#   . "$(dirname -- "${BASH_SOURCE[0]}")/evidence-lib.sh"
#
#   error MESSAGE...        one ::error:: line on stderr (GitHub turns it into an annotation; GitLab shows it
#                           as it is); % CR LF escaped so one message stays one line
#   warn MESSAGE...         the same as a ::warning:: line
#   die MESSAGE...          error, then exit 1
#   require_env NAME...     exit 2 naming every variable that is unset or empty
#   require_uint NAME       exit 2 unless the variable is a whole number
#   PP_TMP                  a private folder, removed on exit (under TMPDIR)
# Nothing here reads a platform's variables: inputs come through the environment each script documents.
set -euo pipefail

PP_TMP=$(mktemp -d "${TMPDIR:-/tmp}/pipeproof.XXXXXX")
trap 'rm -rf -- "${PP_TMP}"' EXIT

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
