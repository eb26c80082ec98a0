# shellcheck shell=sh
# The remote side of prov-taskserv: one run of one action of one taskserv on this host.
#
# prov sends this program on the stdin of `sh -s`, followed by data and one call:
#   __prov_env <<'__PROV_ENV__'     the environment, one `NAME r VALUE` or `NAME b BASE64` line per
#   ...                             variable (PROV_TASKSERV, PROV_ACTION, PROV_VERSION,
#   __PROV_ENV__                    PROV_SETTING_*, ...): read as data, never parsed as shell
#   __prov_files() { ... }          writes the taskserv folder (and _lib/) into the folder $1
#   __prov_main </dev/null
# It writes the folder under $PROV_ROOT, runs the action's scripts under `timeout` with stdin from
# /dev/null (the rest of stdin is this program), records the installed version in
# $PROV_ROOT/<name>.json and ends with one result line:
#   @@PROV_RESULT@@ status=ok|changed|failed|skipped phase=P rc=N version=V previous=V [flag=value...]
# Flags: installed=0|1 healthy=0|1 timeout=1 rolled_back=0|1 attempted=V
#        reason=unsupported|not_installed|no_script (with status=skipped) note=BASE64 (why unsupported).
#
# "Unsupported on this host" is exit 113 from a script that also wrote the reason to
# $PROV_UNSUPPORTED_FILE (the prov_unsupported helper of _lib/service.sh does both): no common tool
# does that by accident. Any other non-zero exit, 100 from apt-get included, is a failure.
set -u
umask 022
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
DEBIAN_FRONTEND=noninteractive
export PATH DEBIAN_FRONTEND

# Reads the environment section: each value is assigned as data (`read -r`, base64 -d), each
# name checked again; a line that is not NAME KIND VALUE stops the run.
__prov_env() {
  while read -r __prov_n __prov_k __prov_v; do
    case "$__prov_n" in
    '' | [!A-Za-z_]* | *[!A-Za-z0-9_]*) echo "prov: invalid variable name in the environment section" >&2; return 1 ;;
    esac
    case "$__prov_k" in
    r) ;;
    b) __prov_v=$(printf '%s' "$__prov_v" | base64 -d && printf x) || return 1; __prov_v=${__prov_v%x} ;;
    *) echo "prov: invalid line for $__prov_n in the environment section" >&2; return 1 ;;
    esac
    export "$__prov_n=$__prov_v"
  done
  unset __prov_n __prov_k __prov_v
}
__prov_abort() {
  echo "prov: $1" >&2
  printf '\n@@PROV_RESULT@@ status=failed phase=upload rc=1 version= previous= \n'
  exit 0
}
__prov_result() { printf '\n@@PROV_RESULT@@ status=%s phase=%s rc=%s version=%s previous=%s %s\n' "$1" "$2" "$3" "${4:-}" "${5:-}" "${6:-}"; }
__prov_run() {
  [ -f "./$1.sh" ] || return 127
  rm -f "$PROV_UNSUPPORTED_FILE"
  timeout -k 5 "$PROV_TIMEOUT" sh "./$1.sh" </dev/null
}
# True when the last script said "unsupported on this host" (exit code $1).
__prov_unsupported() { [ "$1" = 113 ] && [ -f "$PROV_UNSUPPORTED_FILE" ]; }
# The reason it gave, one base64 word for the result line.
__prov_note() { head -c 2000 "$PROV_UNSUPPORTED_FILE" 2>/dev/null | base64 | tr -d '\n'; }
__prov_state() {
  mkdir -p "$R" && printf '{"name":"%s","version":"%s","previous_version":"%s","server":"%s","installed_at":"%s"}\n' \
    "$PROV_TASKSERV" "$1" "$2" "$PROV_SERVER" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$S.tmp" && mv "$S.tmp" "$S"
}
__prov_health() {
  [ -f ./health.sh ] || return 127
  __n=0
  while :; do
    __prov_run health && return 0
    __rc=$?
    if [ "$__rc" = 124 ] || [ "$__rc" = 137 ] || __prov_unsupported "$__rc"; then return "$__rc"; fi
    __n=$((__n + 1))
    [ "$__n" -ge "${PROV_HEALTH_RETRIES:-3}" ] && return "$__rc"
    sleep "${PROV_HEALTH_INTERVAL:-1}"
  done
}
__prov_fail() { # phase rc
  if [ "$2" = 124 ] || [ "$2" = 137 ]; then
    echo "prov: $1.sh timed out after ${PROV_TIMEOUT}s and was killed on $PROV_SERVER" >&2
    __prov_result failed "$1" "$2" "$PROV_VERSION" "$PROV_INSTALLED_VERSION" timeout=1
  elif __prov_unsupported "$2"; then
    __prov_result skipped "$1" "$2" "$PROV_VERSION" "$PROV_INSTALLED_VERSION" "reason=unsupported note=$(__prov_note)"
  else
    __prov_result failed "$1" "$2" "$PROV_VERSION" "$PROV_INSTALLED_VERSION"
  fi
}
__prov_main() {
  R="${PROV_ROOT:-/var/lib/prov/taskservs}"
  D="$R/$PROV_TASKSERV"
  S="$R/$PROV_TASKSERV.json"
  T="$R/.upload-$PROV_TASKSERV-$$"
  PROV_UNSUPPORTED_FILE="$R/.unsupported-$PROV_TASKSERV-$$"
  export PROV_UNSUPPORTED_FILE
  trap 'rm -f "$PROV_UNSUPPORTED_FILE"' EXIT
  mkdir -p "$R" || { __prov_result failed upload 1 "$PROV_VERSION" "" ; return 1; }
  if ! { rm -rf "$T" && mkdir -p "$T" && __prov_files "$T"; }; then
    echo "prov: cannot write $T" >&2
    __prov_result failed upload 1 "$PROV_VERSION" ""
    return 1
  fi
  if ! { rm -rf "$D" && mv "$T" "$D"; }; then __prov_result failed upload 1 "$PROV_VERSION" ""; return 1; fi
  cd "$D" || return 1
  PROV_INSTALLED_VERSION=$(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' "$S" 2>/dev/null | head -n 1)
  export PROV_DIR="$D" PROV_LIB="$D/_lib" PROV_STATE_FILE="$S" PROV_INSTALLED_VERSION
  case "$PROV_ACTION" in
  install)
    if [ -f "$S" ] && [ "$PROV_INSTALLED_VERSION" != "$PROV_VERSION" ]; then
      :
    elif __prov_run check; then
      [ -f "$S" ] || __prov_state "$PROV_VERSION" ""
      __prov_result ok check 0 "$PROV_VERSION" "" installed=1; return 0
    fi
    export PROV_PREVIOUS_VERSION="$PROV_INSTALLED_VERSION"
    __prov_run install; __rc=$?
    [ "$__rc" = 0 ] || { __prov_fail install "$__rc"; return 0; }
    __prov_run check; __rc=$?
    [ "$__rc" = 0 ] || { echo "prov: check.sh still fails after install.sh succeeded" >&2; __prov_fail check "$__rc"; return 0; }
    __prov_state "$PROV_VERSION" "$PROV_INSTALLED_VERSION"
    __prov_result changed install 0 "$PROV_VERSION" "$PROV_INSTALLED_VERSION" installed=1
    ;;
  remove)
    __had=0
    [ -f "$S" ] && __had=1
    [ "$__had" = 1 ] || { __prov_run check && __had=1; }
    __prov_run uninstall; __rc=$?
    [ "$__rc" = 0 ] || [ "$__rc" = 127 ] || { __prov_fail uninstall "$__rc"; return 0; }
    rm -f "$S"; cd / && rm -rf "$D"
    if [ "$__had" = 1 ]; then __prov_result changed uninstall 0 "$PROV_INSTALLED_VERSION" "" installed=0
    else __prov_result ok uninstall 0 "" "" installed=0; fi
    ;;
  update)
    __prev="$PROV_INSTALLED_VERSION"
    if [ "$__prev" = "$PROV_VERSION" ] && __prov_run check; then
      __prov_result ok check 0 "$PROV_VERSION" "" installed=1; return 0
    fi
    export PROV_PREVIOUS_VERSION="$__prev"
    __s=update; [ -f ./update.sh ] || __s=install
    __phase=""
    __prov_run "$__s"; __rc=$?
    if [ "$__rc" = 0 ]; then
      __prov_run check; __rc=$?; __phase=check
      if [ "$__rc" = 0 ]; then
        __prov_health; __rc=$?; __phase=health
        [ "$__rc" = 127 ] && __rc=0
      fi
    else __phase="$__s"; fi
    if [ "$__rc" = 0 ]; then
      __prov_state "$PROV_VERSION" "$__prev"
      __prov_result changed "$__s" 0 "$PROV_VERSION" "$__prev" installed=1; return 0
    fi
    # Unsupported here: nothing was changed, so there is nothing to roll back.
    if __prov_unsupported "$__rc"; then __prov_fail "$__phase" "$__rc"; return 0; fi
    echo "prov: $__phase failed (exit $__rc) for $PROV_TASKSERV $PROV_VERSION on $PROV_SERVER" >&2
    if [ -n "$__prev" ]; then
      echo "prov: rolling back $PROV_TASKSERV to $__prev" >&2
      __want="$PROV_VERSION"; PROV_VERSION="$__prev"; PROV_PREVIOUS_VERSION=""; export PROV_VERSION PROV_PREVIOUS_VERSION
      __prov_run "$__s" && __prov_run check && __prov_state "$__prev" "" && \
        { __prov_result failed "$__phase" "$__rc" "$__prev" "" "rolled_back=1 attempted=$__want"; return 0; }
      echo "prov: rollback to $__prev failed too" >&2
    fi
    __prov_result failed "$__phase" "$__rc" "$PROV_VERSION" "$__prev" rolled_back=0
    ;;
  health)
    __prov_health; __rc=$?
    case "$__rc" in
    0) __prov_result ok health 0 "$PROV_INSTALLED_VERSION" "" healthy=1 ;;
    127) __prov_result skipped health 127 "$PROV_INSTALLED_VERSION" "" reason=no_script ;;
    *)
      if __prov_unsupported "$__rc"; then __prov_result skipped health "$__rc" "$PROV_INSTALLED_VERSION" "" "reason=unsupported note=$(__prov_note)"
      else __prov_result failed health "$__rc" "$PROV_INSTALLED_VERSION" "" healthy=0; fi
      ;;
    esac
    ;;
  status|check)
    __prov_run check; __rc=$?
    if __prov_unsupported "$__rc"; then
      __prov_result skipped check "$__rc" "" "" "installed=0 reason=unsupported note=$(__prov_note)"
    elif [ "$__rc" = 0 ]; then
      __h=""
      if [ "$PROV_ACTION" = status ] && [ -f ./health.sh ]; then
        PROV_HEALTH_RETRIES=1; if __prov_health; then __h=healthy=1; else __h=healthy=0; fi
      fi
      __prov_result ok check 0 "${PROV_INSTALLED_VERSION:-unknown}" "" "installed=1 $__h"
    elif [ -f "$S" ]; then
      __prov_result failed check 1 "$PROV_INSTALLED_VERSION" "" installed=0
    else
      __prov_result skipped check 1 "" "" "installed=0 reason=not_installed"
    fi
    ;;
  restart)
    if [ -f ./restart.sh ]; then __prov_run restart; __rc=$?
    else
      __rc=0
      . "$PROV_LIB/service.sh" || __rc=1
      for __svc in $PROV_SERVICES; do [ "$__rc" = 0 ] && { svc_restart "$__svc" || __rc=1; }; done
    fi
    if [ "$__rc" = 0 ]; then __prov_result changed restart 0 "$PROV_INSTALLED_VERSION" ""; else __prov_fail restart "$__rc"; fi
    ;;
  logs)
    if [ -f ./logs.sh ]; then __prov_run logs; __rc=$?
    else
      __rc=0
      . "$PROV_LIB/service.sh" || __rc=1
      for __svc in $PROV_SERVICES; do [ "$__rc" = 0 ] && svc_logs "$__svc" "${PROV_TAIL:-50}"; done
    fi
    if [ "$__rc" = 0 ]; then __prov_result ok logs 0 "$PROV_INSTALLED_VERSION" ""; else __prov_fail logs "$__rc"; fi
    ;;
  *) echo "prov: unknown action $PROV_ACTION" >&2; __prov_result failed action 2 "" "" ;;
  esac
  return 0
}
