"""The LDAP source: read users and groups from a directory (or an LDIF file) as LdapEntry pages.

Nothing here touches the store: entries flow out, the sync engine decides what to do with them.
"""

from syncsvc.ldap.client import Ldap3Directory, ldap_errors, open_directory
from syncsvc.ldap.contentsync import ContentSyncResult
from syncsvc.ldap.flavors import FLAVORS, Flavor, flavor_for
from syncsvc.ldap.ldif import LdifDirectory, parse_ldif
from syncsvc.ldap.protocol import Directory, ServerInfo
from syncsvc.ldap.queries import (
    SearchQuery,
    changed_since,
    escape_filter_value,
    generalized_time,
    group_query,
    user_query,
)

__all__ = [
    "ContentSyncResult",
    "Directory",
    "FLAVORS",
    "Flavor",
    "Ldap3Directory",
    "LdifDirectory",
    "SearchQuery",
    "ServerInfo",
    "changed_since",
    "escape_filter_value",
    "flavor_for",
    "generalized_time",
    "group_query",
    "ldap_errors",
    "open_directory",
    "parse_ldif",
    "user_query",
]
