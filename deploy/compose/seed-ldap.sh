#!/bin/sh
# seed-ldap.sh: load the demo directory into the compose OpenLDAP once (a one-shot service).
#
# Environment: LDAP_URL (ldap://openldap:389), LDAP_BASE_DN (dc=example,dc=com), LDAP_ADMIN_DN
# (cn=admin,<base>), LDAP_ADMIN_PASSWORD_FILE (a file holding the admin password), SEED_LDIF
# (/seed/directory.ldif: syncsvc/demo/directory.ldif, mounted). Waits up to 2 minutes for the
# server; does nothing when ou=people already exists, so `docker compose up` can run it again.
# Entries that exist already are skipped; any other ldapadd error fails the seed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
url=${LDAP_URL:-ldap://openldap:389}
base=${LDAP_BASE_DN:-dc=example,dc=com}
admin=${LDAP_ADMIN_DN:-cn=admin,$base}
ldif=${SEED_LDIF:-/seed/directory.ldif}
given=${LDAP_ADMIN_PASSWORD_FILE:?set LDAP_ADMIN_PASSWORD_FILE}
# ldap-utils' -y reads the whole file, a trailing newline included: pass a copy without it.
pwfile=$(mktemp)
trap 'rm -f "$pwfile"' EXIT
tr -d '\r\n' < "$given" > "$pwfile"

n=0
until ldapsearch -x -LLL -H "$url" -D "$admin" -y "$pwfile" -b "$base" -s base dn >/dev/null 2>&1
do
    n=$((n + 1))
    if [ "$n" -ge 60 ]; then
        echo "seed-ldap: $url does not answer a bind as $admin" >&2
        exit 1
    fi
    sleep 2
done

if ldapsearch -x -LLL -H "$url" -D "$admin" -y "$pwfile" -b "ou=people,$base" -s base dn \
        >/dev/null 2>&1; then
    echo "seed-ldap: ou=people,$base exists; already seeded"
    exit 0
fi

# -c: go on past entries the image made itself (an ou=services, say); any other error fails.
errors=$("$here/ldif-strip.sh" "$base" < "$ldif" \
    | ldapadd -c -x -H "$url" -D "$admin" -y "$pwfile" 2>&1 >/dev/null) || true
if printf '%s\n' "$errors" | grep 'ldap_add:' | grep -qv 'Already exists (68)'; then
    printf '%s\n' "$errors" >&2
    echo "seed-ldap: loading $ldif failed" >&2
    exit 1
fi
echo "seed-ldap: loaded $ldif into $url"
