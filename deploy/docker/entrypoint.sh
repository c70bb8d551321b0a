#!/bin/sh
# syncsvc container entrypoint.
#
#   (no arguments) or `serve ...`: bring the store's schema up to date (`syncsvc db upgrade`),
#       then `exec syncsvc serve ...`, so syncsvc is PID 1 and gets SIGTERM directly (it finishes
#       in-flight requests and stops a running sync at a page boundary).
#   anything else: run that syncsvc command, e.g. `docker compose exec syncsvc syncsvc token
#       create ...` or `docker run IMAGE check-config --show`.
#
# Configuration comes from SYNCSVC_CONFIG (a syncsvc.toml) and/or SYNCSVC_<SECTION>__<KEY>
# variables, secrets from *_FILE variables (see README.md, "Running in production").
# DB_WAIT_ATTEMPTS (default 20, 3 s apart) bounds how long the upgrade waits for a database that
# is still starting. Replicas upgrading the same database at once need no retry: the upgrade
# holds a PostgreSQL advisory lock, so the others wait for it and then find the schema done.
set -eu

if [ "$#" -gt 0 ] && [ "$1" = syncsvc ]; then
    shift  # `IMAGE syncsvc token list` works as well as `IMAGE token list`
fi

if [ "$#" -eq 0 ] || [ "$1" = serve ]; then
    attempts=${DB_WAIT_ATTEMPTS:-20}
    n=1
    until syncsvc db upgrade; do
        if [ "$n" -ge "$attempts" ]; then
            echo "entrypoint: syncsvc db upgrade failed $n times; giving up" >&2
            exit 1
        fi
        echo "entrypoint: db upgrade failed (attempt $n of $attempts); retrying in 3 s" >&2
        n=$((n + 1))
        sleep 3
    done
    if [ "$#" -eq 0 ]; then
        set -- serve
    fi
fi

exec syncsvc "$@"
