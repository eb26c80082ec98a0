#!/bin/sh
# Exit 0 when {{template.name}} answers (e.g. curl -fsS http://127.0.0.1:PORT/health).
[ -f /etc/{{template.name}}/version ]
