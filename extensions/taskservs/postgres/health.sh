#!/bin/sh
# Healthy when pg_isready accepts a TCP connection on the configured port.
pg_isready -h 127.0.0.1 -p "${PROV_SETTING_PORT:-5432}"
