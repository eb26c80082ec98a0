#!/usr/bin/env bash
# The main job, end to end, on the embedded defaults: a workspace, its layered config and the
# dependency order of the catalog; three local sandbox servers (real sshd) from infra/demo;
# the web cluster installed on them; a secret in the workspace store; the extensions packed to
# the on-disk OCI layout; a workflow on the SQLite store. Everything it starts it stops
# (KEEP=1 keeps the servers). Run as root on Debian: sudo bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
bash scripts/setup.sh
export PATH="$repo/bin:$PATH"

demo_root=$(mktemp -d /tmp/prov-demo.XXXXXX)
export XDG_CONFIG_HOME="$demo_root/xdg"
ws="$demo_root/demo"
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
have() { [ -f "$repo/packages/$1/dist/cli.mjs" ]; }

cleanup() {
  if [ "${KEEP:-0}" != 1 ] && have server && [ -d "$ws" ]; then
    step "cleanup: delete the servers"
    (cd "$ws" && prov-server delete --all --yes -q >/dev/null) || true
  fi
  [ "${KEEP:-0}" = 1 ] || rm -rf "$demo_root"
}
trap cleanup EXIT

step "prov workspace init demo --template full"
prov workspace init demo --template full --path "$ws" -q
cd "$ws"

step "prov config show --explain (first keys, with their layer and origin)"
prov config show --explain --out json | jq -r '.[] | "\(.key) = \(.value|tostring)   [\(.layer)\(if .source then " " + .source else "" end)\(if .line then ":" + (.line|tostring) else "" end)]"' | head -12

step "prov deps resolve kubernetes cilium (levels of the install order)"
prov deps resolve kubernetes cilium --out json | jq -c .levels

if have server; then
  step "prov-server plan --infra demo | prov-server apply --yes"
  prov-server plan --infra demo | prov-server apply --yes --out ndjson | jq -c '{name, status, ip_address}'
  step "prov-server list"
  prov-server list --out table
  step "prov-server exec all -- hostname"
  prov-server exec all --out json -- hostname | jq -c '.[] | {server, exit_code, stdout}'
  step "day zero on web-01 (its provision: block, applied by Ignition at first boot)"
  prov-server exec web-01 --out json -- sh -c 'cat /etc/motd; id deploy' | jq -r '.[0].stdout'
fi

if have kms; then
  step "prov-kms: an age identity, and the database password in the workspace secret store"
  prov-kms keygen -q >/dev/null
  printf 'demo-db-password' | prov-kms secret set db/password - -q >/dev/null
  prov-kms secret list --out json | jq -c .
fi

if have taskserv && have server; then
  step "prov-taskserv install --infra demo (postgres -> webapp -> haproxy, in levels; the password is a secret reference)"
  prov-taskserv install --infra demo --out ndjson | jq -c '{server, taskserv, status, duration_ms}'
  step "prov-taskserv health (the servers come from prov-server list)"
  prov-server list | prov-taskserv health --out json | jq -c '.[] | {server, taskserv, status}'
  step "through haproxy on web-01"
  prov-server exec web-01 --out json -- curl -s http://127.0.0.1/ | jq -r '.[0].stdout'
fi

if have oci; then
  step "prov-oci: package the catalog's redis taskserv into the on-disk OCI layout"
  prov-oci push "layout:$ws/.prov/oci:redis-7.0.0" "$repo/extensions/taskservs/redis" --out json | jq -c '{reference, digest}'
  prov-oci inspect "layout:$ws/.prov/oci:redis-7.0.0" --out json | jq -c '{artifactType: .manifest.artifactType, layers: (.manifest.layers | length)}'
fi

if have orch; then
  step "prov-orch run: a two-step workflow on the SQLite store"
  cat > "$demo_root/hello.yaml" <<'YAML'
schema: prov.orch.workflow/v1
name: hello
steps:
  - id: plan
    run: [prov, deps, resolve, redis, --out, json]
    expect_json: true
  - id: report
    run: [sh, -c, "echo done"]
    depends_on: [plan]
YAML
  prov-orch run "$demo_root/hello.yaml" --out json | jq -c '{id, status}'
fi

step "done"
