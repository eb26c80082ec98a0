#!/bin/sh
# Healthy when /metrics serves node_exporter_build_info.
curl -fsS "http://127.0.0.1:${PROV_SETTING_PORT:-9100}/metrics" | grep -m 1 '^node_exporter_build_info'
