#!/bin/sh
# Healthy when redis answers PING with PONG.
answer=$(redis-cli -p "${PROV_SETTING_PORT:-6379}" ping 2>&1)
echo "redis: $answer"
[ "$answer" = PONG ]
