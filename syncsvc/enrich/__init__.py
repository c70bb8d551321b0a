"""Profile enrichment: rules declared in ``[enrich]``, applied to each user after mapping.

Config (TOML; rules run in the order written, each sees what the ones before it did)::

    [enrich]
    phone_region = "US"                  # for phone numbers written without +country

    [[enrich.rules]]
    kind = "default"                     # only when the directory gave no value
    target = "preferredLanguage"
    value = "en"

    [[enrich.rules]]
    kind = "template"                    # sandboxed Jinja2; see syncsvc.enrich.templates
    target = "displayName"
    template = "{{ user.name.givenName }} {{ user.name.familyName }}"

    [[enrich.rules]]
    kind = "email"                       # e-mails lower-case

    [[enrich.rules]]
    kind = "phone"                       # phone numbers to E.164

    [[enrich.rules]]
    kind = "lookup"                      # an HR export keyed by employeeNumber
    file = "hr.csv"                      # relative to the config file
    attribute = "employeeNumber"         # LDAP attribute (or path = "enterprise:employeeNumber")
    column = "employee_id"
    set = { "enterprise:costCenter" = "cost_center", "addresses[work].locality" = "office" }

    [[enrich.rules]]
    kind = "department_from_dn"          # enterprise:department from the nearest ou=

Other kinds: ``whitespace`` (collapse; ``targets``), ``title_case`` (``targets``, ``keep``).
:func:`compile_enrichment` checks all of it at once; ``syncsvc check-config`` calls it.

Failures: a rule that fails on one entry changes nothing and becomes a
:class:`~syncsvc.domain.Problem` of the run; the entry is still written with what the mapping
and the other rules gave. Skipping the entry instead would hold back every directory change
to that user (a new title, a deactivation) because of one template, and DESIGN.md says never
lose data. A lookup file that cannot be read at the start of a run fails the run
(:class:`EnrichmentError`).

The enriched resource is what the store hashes: changing the rules and running a full sync
rewrites exactly the users whose result changed. Enrichment writes the LDAP-owned resource
only, never the syncsvc-owned ``profile`` column.
"""

from syncsvc.enrich._base import (
    Enriched,
    Enricher,
    Enrichment,
    EnrichmentError,
    NoEnrichment,
    Rule,
    RuleFailed,
    Update,
)
from syncsvc.enrich._compile import KINDS, compile_enrichment, parse_enrich_settings

__all__ = [
    "KINDS",
    "Enriched",
    "Enricher",
    "Enrichment",
    "EnrichmentError",
    "NoEnrichment",
    "Rule",
    "RuleFailed",
    "Update",
    "compile_enrichment",
    "parse_enrich_settings",
]
