# shellcheck shell=sh
# prov service helper (POSIX sh), uploaded with every taskserv as $PROV_LIB/service.sh.
# Source it: `. "$PROV_LIB/service.sh"`. Works with systemd (when it is PID 1: a prov-<name>.service
# unit) and without it (a background daemon supervised by pidfile). See docs/taskserv-authoring.md.
#
#   svc_start NAME CMD [ARGS...]   start CMD as daemon NAME (no-op when running); SVC_USER, SVC_DIR optional
#   svc_stop NAME                  stop it (TERM, then KILL after 10 s)
#   svc_restart NAME [CMD...]      stop + start (with the recorded command when none is given)
#   svc_status NAME                prints running|stopped; exit 0 when running, 3 when not
#   svc_running NAME               exit 0 when running
#   svc_logs NAME [N]              last N lines of its log (journal with systemd)
#   svc_remove NAME                stop and forget it (unit file, pidfile, recorded command)
#   svc_wait SECONDS CMD [ARGS...] retry CMD every 0.5 s until it succeeds or SECONDS pass
#   pkg_install PKG...             apt-get install (serialised, packaged services not auto-started)
#   pkg_purge PKG...               apt-get purge of the installed ones
#   prov_unsupported REASON...     stop here: this taskserv cannot run on this host (result skipped,
#                                  not failed); the only way to say so (exit 113 + the reason file)
SVC_RUN_DIR=${SVC_RUN_DIR:-/var/lib/prov/run}
SVC_STATE_DIR=${SVC_STATE_DIR:-/var/lib/prov/services}
SVC_LOG_DIR=${SVC_LOG_DIR:-/var/log/prov}

svc_has_systemd() {
  [ -d /run/systemd/system ] && [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] && command -v systemctl >/dev/null 2>&1
}

svc__pid() {
  [ -f "$SVC_RUN_DIR/$1.pid" ] || return 1
  __svc_pid=$(cat "$SVC_RUN_DIR/$1.pid" 2>/dev/null)
  [ -n "$__svc_pid" ] && kill -0 "$__svc_pid" 2>/dev/null && [ -d "/proc/$__svc_pid" ] || return 1
  # A zombie is not running.
  case "$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$__svc_pid/status" 2>/dev/null)" in Z | X) return 1 ;; esac
  echo "$__svc_pid"
}

svc__quote() {
  for __a in "$@"; do printf "'%s' " "$(printf '%s' "$__a" | sed "s/'/'\\\\''/g")"; done
}

svc_running() {
  if svc_has_systemd; then systemctl is-active --quiet "prov-$1.service"; else svc__pid "$1" >/dev/null; fi
}

svc_status() {
  if svc_running "$1"; then echo running; return 0; fi
  echo stopped
  return 3
}

svc_start() {
  __name=$1
  shift
  mkdir -p "$SVC_RUN_DIR" "$SVC_STATE_DIR" "$SVC_LOG_DIR"
  if [ $# -gt 0 ]; then
    svc__quote "$@" > "$SVC_STATE_DIR/$__name.cmd"
    printf '%s\n' "${SVC_USER:-}" > "$SVC_STATE_DIR/$__name.user"
    printf '%s\n' "${SVC_DIR:-/}" > "$SVC_STATE_DIR/$__name.dir"
  fi
  [ -f "$SVC_STATE_DIR/$__name.cmd" ] || { echo "svc_start: no command recorded for $__name" >&2; return 2; }
  svc_running "$__name" && return 0
  __cmd=$(cat "$SVC_STATE_DIR/$__name.cmd")
  __user=$(cat "$SVC_STATE_DIR/$__name.user" 2>/dev/null)
  __dir=$(cat "$SVC_STATE_DIR/$__name.dir" 2>/dev/null)
  if svc_has_systemd; then
    {
      echo "[Unit]"
      echo "Description=prov taskserv daemon $__name"
      echo "After=network-online.target"
      echo "[Service]"
      echo "ExecStart=$__cmd"
      [ -n "$__user" ] && echo "User=$__user"
      echo "WorkingDirectory=${__dir:-/}"
      echo "Restart=on-failure"
      echo "[Install]"
      echo "WantedBy=multi-user.target"
    } > "/etc/systemd/system/prov-$__name.service"
    systemctl daemon-reload && systemctl enable --now "prov-$__name.service"
    return $?
  fi
  __log="$SVC_LOG_DIR/$__name.log"
  if [ -n "$__user" ]; then
    touch "$__log" && chown "$__user" "$__log"
    # The recorded user is quoted like the command: both are run through eval below.
    __run="setpriv $(svc__quote "--reuid=$__user" "--regid=$(id -g "$__user")")--init-groups"
  else
    __run=""
  fi
  # setsid: the daemon leaves the script's process group (a timeout kills that group, not the daemon).
  (cd "${__dir:-/}" && eval "exec setsid $__run $__cmd" >>"$__log" 2>&1 </dev/null) &
  echo $! > "$SVC_RUN_DIR/$__name.pid"
  sleep 0.3
  if ! svc__pid "$__name" >/dev/null; then
    echo "svc_start: $__name exited at once; last log lines:" >&2
    tail -n 20 "$__log" >&2 2>/dev/null
    return 1
  fi
  return 0
}

svc_stop() {
  if svc_has_systemd; then
    [ -f "/etc/systemd/system/prov-$1.service" ] && systemctl stop "prov-$1.service"
    return 0
  fi
  __pid=$(svc__pid "$1") || { rm -f "$SVC_RUN_DIR/$1.pid"; return 0; }
  kill -TERM "$__pid" 2>/dev/null
  __i=0
  while kill -0 "$__pid" 2>/dev/null && [ "$__i" -lt 100 ]; do
    sleep 0.1
    __i=$((__i + 1))
  done
  kill -0 "$__pid" 2>/dev/null && kill -KILL "$__pid" 2>/dev/null
  rm -f "$SVC_RUN_DIR/$1.pid"
  return 0
}

svc_restart() {
  __rname=$1
  shift
  svc_stop "$__rname"
  svc_start "$__rname" "$@"
}

svc_remove() {
  svc_stop "$1"
  if svc_has_systemd && [ -f "/etc/systemd/system/prov-$1.service" ]; then
    systemctl disable "prov-$1.service" >/dev/null 2>&1
    rm -f "/etc/systemd/system/prov-$1.service"
    systemctl daemon-reload
  fi
  rm -f "$SVC_STATE_DIR/$1.cmd" "$SVC_STATE_DIR/$1.user" "$SVC_STATE_DIR/$1.dir" "$SVC_RUN_DIR/$1.pid"
  return 0
}

svc_logs() {
  if svc_has_systemd; then
    journalctl -u "prov-$1.service" -n "${2:-50}" --no-pager 2>/dev/null
  else
    tail -n "${2:-50}" "$SVC_LOG_DIR/$1.log" 2>/dev/null
  fi
  return 0
}

svc_wait() {
  __secs=$1
  shift
  __tries=$((__secs * 2))
  while [ "$__tries" -gt 0 ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
    __tries=$((__tries - 1))
  done
  "$@"
}

# Stops and disables a distribution unit so it does not fight the prov-managed daemon.
svc_disable_packaged() {
  if svc_has_systemd; then
    systemctl disable --now "$1" >/dev/null 2>&1 || true
  fi
  return 0
}

pkg_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

pkg__locked() {
  mkdir -p /var/lib/prov
  (
    flock -w 900 9 || { echo "pkg: apt lock busy" >&2; exit 1; }
    __made=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && __made=1
    fi
    "$@"
    __rc=$?
    [ "$__made" = 1 ] && rm -f /usr/sbin/policy-rc.d
    exit "$__rc"
  ) 9>/var/lib/prov/apt.lock
}

pkg__install() {
  __missing=""
  for __p in "$@"; do pkg_installed "$__p" || __missing="$__missing $__p"; done
  [ -n "$__missing" ] || return 0
  echo "pkg: installing$__missing"
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $__missing && return 0
  echo "pkg: retrying after apt-get update" >&2
  apt-get update -q -o DPkg::Lock::Timeout=600 || true
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $__missing
}

pkg__purge() {
  __present=""
  for __p in "$@"; do pkg_installed "$__p" && __present="$__present $__p"; done
  [ -n "$__present" ] || return 0
  echo "pkg: purging$__present"
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  apt-get purge -y -q -o DPkg::Lock::Timeout=600 $__present
}

pkg_install() { pkg__locked pkg__install "$@"; }
pkg_purge() { pkg__locked pkg__purge "$@"; }

# "Unsupported on this host" needs two things no common tool does by accident: exit code 113 and
# the reason written to $PROV_UNSUPPORTED_FILE (set by prov for each script). Anything else that
# fails, apt-get's exit 100 included, is a failure.
prov_unsupported() {
  echo "prov: unsupported on this host: $*"
  if [ -n "${PROV_UNSUPPORTED_FILE:-}" ]; then printf '%s\n' "$*" > "$PROV_UNSUPPORTED_FILE"; fi
  exit 113
}
