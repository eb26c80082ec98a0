#!/bin/sh
. "$PROV_LIB/service.sh"
pkg_installed kubernetes-client && [ -f /etc/prov/kubernetes/info ]
