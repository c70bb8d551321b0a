"""syncsvc: one company directory, in sync everywhere (LDAP in, SCIM 2.0 out)."""

__version__ = "0.1.0"
