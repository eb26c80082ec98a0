/**
 * Day zero inside a local sandbox: the rendered Ignition document is put at FIRST_BOOT_DOCUMENT
 * (mode 0600) in the sandbox's root before its first boot, and the sandbox's boot runs
 * `firstBootScript` before sshd starts. The script runs the real Ignition (Debian package
 * `ignition`, part of the sandbox image) on the sandbox's own root: its `files` stage creates the
 * users and groups, writes files, directories, links and units, and enables units by preset.
 * The document is deleted afterwards whatever happened (it may hold secret values); a stamp makes
 * it happen once, like Ignition on a real machine.
 */
import { FIRST_BOOT_SCRIPT, FIRST_BOOT_STAMP } from './materialize'

export const FIRST_BOOT_DOCUMENT = '/etc/prov/first-boot.ign'
export const FIRST_BOOT_LOG = '/var/log/prov/first-boot.log'

export const firstBootScript = `# prov first boot: Ignition's files stage on this root, once.
doc=${FIRST_BOOT_DOCUMENT}
stamp=/var/lib/prov/first-boot.applied
log=${FIRST_BOOT_LOG}
mkdir -p /var/lib/prov /var/log/prov
if [ -f "$doc" ] && [ ! -e "$stamp" ]; then
  tools=$(mktemp -d /tmp/prov-ignition.XXXXXX) || exit 1
  # No SELinux here: Ignition relabels through setfiles and reads the policy type from this file.
  printf '#!/bin/sh\\nexit 0\\n' > "$tools/setfiles" && chmod 755 "$tools/setfiles"
  made_selinux=
  if [ ! -e /etc/selinux/config ]; then
    mkdir -p /etc/selinux && echo 'SELINUXTYPE=none' > /etc/selinux/config && made_selinux=1
  fi
  PATH="$tools:$PATH" /usr/lib/dracut/modules.d/30ignition/ignition -platform file -stage files \\
    -config-cache "$doc" -root / -state-file "$tools/state" -log-to-stdout > "$log" 2>&1
  status=$?
  rm -f "$doc"
  rm -rf "$tools"
  [ -n "$made_selinux" ] && rm -f /etc/selinux/config && rmdir /etc/selinux 2>/dev/null
  if [ "$status" -ne 0 ]; then
    echo "first boot: Ignition failed (exit $status), see $log" >&2
    tail -n 5 "$log" >&2
    exit 1
  fi
  touch "$stamp"
  # Ignition has no run-once commands; prov renders them as a oneshot unit and its script. There
  # is no systemd here, so the script runs now, once.
  if [ -f ${FIRST_BOOT_SCRIPT} ] && [ ! -e ${FIRST_BOOT_STAMP} ]; then
    # The script stamps itself, failed or not: it runs once, like cloud-init's runcmd.
    /bin/sh ${FIRST_BOOT_SCRIPT} >> "$log" 2>&1 || echo "first boot: first-boot commands failed (exit $?), see $log" >&2
  fi
fi
rm -f "$doc"
`
