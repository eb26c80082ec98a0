#!/bin/sh
# Healthy when the files are readable; a version ending in -broken is unhealthy (exercises rollback).
dir=${PROV_SETTING_PATH:-/etc/prov-hello}
version=$(cat "$dir/version" 2>/dev/null) || { echo "no $dir/version"; exit 1; }
case "$version" in *-broken) echo "version $version is broken"; exit 1 ;; esac
echo "$(cat "$dir/message") ($version)"
