#!/bin/sh
# ldif-strip.sh [BASE_DN] < in.ldif > out.ldif
#
# Makes an LDIF that ldapadd accepts on a fresh server: drops comments and the operational
# attributes a server sets itself (entryUUID, timestamps, creatorsName, ...; ldapadd refuses
# them as "no user modification allowed"), with their continuation lines, and drops the entry
# BASE_DN itself when given (images such as osixia/openldap create the suffix entry).
# POSIX sh + awk only: it runs in the OpenLDAP image as well as on a developer's machine.
set -eu
base=$(printf '%s' "${1:-}" | tr 'A-Z' 'a-z' | tr -d ' ')
exec awk -v base="$base" '
BEGIN {
    split("entryuuid entrycsn createtimestamp modifytimestamp creatorsname modifiersname " \
          "structuralobjectclass subschemasubentry hassubordinates entrydn contextcsn " \
          "memberof pwdchangedtime", names, " ")
    for (i in names) operational[names[i]] = 1
    skip_entry = 0; skip_attr = 0; blank = 1
}
/^#/ { skip_attr = 1; next }                      # a comment (and its continuation lines)
/^[ \t]*$/ {                                       # end of an entry
    if (!skip_entry && !blank) print ""
    skip_entry = 0; skip_attr = 0; blank = 1; next
}
/^ / { if (!skip_attr && !skip_entry) print; next } # a continuation line
{
    attr = tolower($0); sub(/:.*/, "", attr); sub(/;.*/, "", attr)
    if (attr == "dn") {
        dn = tolower($0); sub(/^dn:[ \t]*/, "", dn); gsub(/ /, "", dn)
        skip_entry = (base != "" && dn == base)
    }
    skip_attr = (attr in operational)
    if (!skip_attr && !skip_entry) { print; blank = 0 }
}
' 
