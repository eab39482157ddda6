#!/bin/bash
# hubbub-healthcheck - the container's HEALTHCHECK: exit 0 if GET /healthz
# answers 200 (bash's /dev/tcp: the image carries no HTTP client). The port
# is the one the server was told through the environment, as in the image:
# HUBBUB_PORT, else HUBBUB_LISTEN's, else 8080. A server that listens on a
# specific address (HUBBUB_HOST / HUBBUB_LISTEN) is asked there, else on
# 127.0.0.1.
listen=${HUBBUB_LISTEN:-0.0.0.0:8080}
port=${HUBBUB_PORT:-${listen##*:}}
host=${HUBBUB_HOST:-${listen%:*}}
case "$host" in "" | 0.0.0.0 | "[::]") host=127.0.0.1 ;; \[*\]) host=${host:1:-1} ;; esac
exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host" >&3
read -r -t 5 _ status _ <&3 || exit 1
[ "$status" = 200 ]
