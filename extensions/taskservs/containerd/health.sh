#!/bin/sh
# Healthy when `ctr version` reaches the daemon.
ctr --address /var/lib/prov/containerd/containerd.sock version
