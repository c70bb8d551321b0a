"""Real-parts test harness: a private slapd, a PostgreSQL database per test, a test CA.

Nothing here is a mock: each helper drives the real binaries (slapd, slapadd, ldap-utils, openssl,
PostgreSQL) on loopback ports, so tests see real paging, schema and TLS behaviour.
"""
