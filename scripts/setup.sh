#!/usr/bin/env bash
# Installs what prov's tests, demo and benchmarks need on a fresh Debian machine (as root):
# system packages with apt-get (only the missing ones), then npm ci and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  openssh-server openssh-client iproute2 iptables util-linux procps psmisc kmod jq git ca-certificates
  age docker-registry skopeo postgresql ansible-core apache2-utils shellcheck ignition cloud-init
  build-essential python3 make zsh fish gnupg chromium hcloud-cli
  bubblewrap mmdebstrap
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

# Reproducible installs: exactly the committed lock; an install that rewrites it fails.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  lock_before=$(sha256sum package-lock.json)
  npm ci --no-audit --no-fund >&2
  if [ "$(sha256sum package-lock.json)" != "$lock_before" ]; then
    echo "setup: npm ci changed package-lock.json; commit the complete lock that 'npm install' writes" >&2
    exit 1
  fi
fi

# Test tools kept out of the project's dependency tree (nushell's npm package pins one binary
# package per platform, which would make the lock unreproducible): pinned versions in a cache.
tools="${PROV_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/prov/tools}"
for version in 0.108.0 0.115.1; do
  if [ ! -x "$tools/nushell-$version/node_modules/@nushell/linux-x64/bin/nu" ]; then
    echo "setup: nushell $version -> $tools/nushell-$version" >&2
    mkdir -p "$tools/nushell-$version"
    npm install --prefix "$tools/nushell-$version" --no-save --no-package-lock --no-audit --no-fund --engine-strict=false "nushell@$version" >&2
  fi
done
# just (templates/recipes/justfile is tested with the real one): the rust-just npm package ships
# the binary, but its per-platform packages cannot all be locked here, so it lives in the cache too.
if [ ! -x "$tools/just-1.57.0/node_modules/.bin/just" ]; then
  echo "setup: just 1.57.0 -> $tools/just-1.57.0" >&2
  mkdir -p "$tools/just-1.57.0"
  npm install --prefix "$tools/just-1.57.0" --no-save --no-package-lock --no-audit --no-fund rust-just@1.57.0 >&2
fi
# moto_server (moto 5, the AWS emulator the aws provider and prov-kms tests run against) is not a
# Debian package: the machine image has it under pyenv. Find it, else try pip, else stop here.
moto=""
for candidate in "${MOTO_SERVER:-}" "$HOME"/.pyenv/versions/*/bin/moto_server "$(command -v moto_server || true)"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then moto="$candidate"; break; fi
done
if [ -z "$moto" ]; then
  echo "setup: moto_server missing; trying pip install 'moto[server]>=5'" >&2
  for py in "$HOME"/.pyenv/versions/*/bin/python3 python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -m pip install -q 'moto[server]>=5' >&2; then
      moto="$(dirname "$(command -v "$py")")/moto_server"
      break
    fi
  done
fi
if [ -z "$moto" ] || [ ! -x "$moto" ]; then
  echo "setup: moto_server (moto 5 with its server) is required by the AWS tests: install it under pyenv or set MOTO_SERVER" >&2
  exit 1
fi
"$moto" --help >/dev/null 2>&1 || { echo "setup: $moto does not run" >&2; exit 1; }
echo "setup: moto_server at $moto" >&2

npm run build >&2

# The Debian image local sandbox servers boot from (built once per machine, a few minutes the
# first time; it carries the .debs of the taskserv catalog so sandboxes install them offline).
if [ "$(id -u)" -eq 0 ]; then
  node bin/prov-server image build debian-12 -q >/dev/null
fi
