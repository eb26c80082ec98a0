#!/bin/sh
# Healthy when /health answers 200 (the app reached its database).
curl -fsS "http://127.0.0.1:${PROV_SETTING_PORT:-8080}/health"
