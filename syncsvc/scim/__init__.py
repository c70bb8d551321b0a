"""SCIM 2.0 (RFC 7643/7644): schemas, filters, PATCH, projection, the HTTP routes."""
