#!/bin/sh
# Healthy when `etcdctl endpoint health` succeeds.
ETCDCTL_API=3 etcdctl --endpoints "http://127.0.0.1:${PROV_SETTING_CLIENT_PORT:-2379}" endpoint health
