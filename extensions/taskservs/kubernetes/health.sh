#!/bin/sh
kubectl version --client >/dev/null 2>&1 && ctr --address /var/lib/prov/containerd/containerd.sock version >/dev/null 2>&1
