#!/usr/bin/env bash
# Installs what prov's tests, demo and benchmarks need on a fresh Debian machine (as root):
# system packages with apt-get (only the missing ones), then npm ci and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  openssh-server openssh-client iproute2 iptables util-linux procps psmisc kmod jq git ca-certificates
  age docker-registry skopeo postgresql ansible-core apache2-utils
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing system packages (${missing[*]}); run as root to install them" >&2
  else
    echo "setup: apt-get install ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    # Services from these packages are started by the tests themselves, on loopback, not by the postinst.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    rm -f /usr/sbin/policy-rc.d
  fi
fi

# prov-taskserv catalog: pre-download the .debs so installs inside sandboxes (overlay of this root) hit the cache.
[ "$(id -u)" -eq 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install --download-only -y -qq redis-server redis-tools nginx haproxy etcd-server etcd-client containerd prometheus-node-exporter kubernetes-client curl >&2 || true

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm ci refuses a lock without entries for other platforms' optional packages (the registry
  # mirror here serves only linux-x64 ones); npm install honours the same lock then.
  npm ci --no-audit --no-fund >&2 2>/dev/null || npm install --no-audit --no-fund >&2
fi
npm run build >&2
