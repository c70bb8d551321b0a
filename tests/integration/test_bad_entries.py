"""Directory entries the store cannot take are problems naming the entry, never a failed run.

Before: on PostgreSQL one entry with a 300-character displayName failed the whole full run
(varchar(255)) with the SQL statement and every parameter of its page in the run's detail;
SQLite kept the value silently. Now, on both, the entry is a problem of the run naming its DN
and the attribute, and every other entry is written.
"""

from __future__ import annotations

from syncsvc.domain import RunStatus
from tests.integration.syncenv import pipeline, settings_for, sync_once, users_by_name

BASE = "dc=example,dc=com"
ENG = f"ou=engineering,ou=people,{BASE}"
SALES = f"ou=sales,ou=people,{BASE}"
LONG_UID = "l" * 300


async def test_overlong_and_duplicate_entries_are_problems(slapd, store_url) -> None:
    """Too long for its column, or a userName another entry holds: a problem with the DN."""
    slapd.modify(f"dn: uid=zoe.muller,{ENG}\nchangetype: modify\nreplace: displayName\n"
                 f"displayName: {'z' * 300}\n")
    slapd.modify(f"dn: uid=long.one,{SALES}\nchangetype: add\nobjectClass: inetOrgPerson\n"
                 f"uid: {LONG_UID}\ncn: Long\nsn: Long\n")
    slapd.modify(f"dn: uid=ada.lovelace,{SALES}\nchangetype: add\nobjectClass: inetOrgPerson\n"
                 "uid: ada.lovelace\ncn: Ada Two\nsn: Two\n")
    slapd.modify(f"dn: uid=long.mail,{SALES}\nchangetype: add\nobjectClass: inetOrgPerson\n"
                 f"uid: long.mail\ncn: Long Mail\nsn: Mail\nmail: {'m' * 330}@example.com\n")

    report = await sync_once(settings_for(slapd, store_url))

    reasons = {p.dn: p.reason for p in report.problems}
    assert (RunStatus.SUCCESS, None) == (report.status, report.detail)
    assert "displayName has 300 characters; the store keeps at most 255" == \
        reasons[f"uid=zoe.muller,{ENG}"]
    assert "userName has 300 characters; the store keeps at most 255" == \
        reasons[f"uid=long.one,{SALES}"]
    assert reasons[f"uid=long.mail,{SALES}"].startswith("emails")
    assert reasons[f"uid=ada.lovelace,{SALES}"].startswith(
        f"userName 'ada.lovelace' is already used by uid=ada.lovelace,{ENG}")
    async with pipeline(settings_for(slapd, store_url)) as service:
        users = await users_by_name(service)
    assert {"ada.lovelace", "grace.hopper"} <= users.keys()
    assert not {"zoe.muller", "long.mail", LONG_UID} & users.keys()
    assert f"uid=ada.lovelace,{ENG}" == users["ada.lovelace"].dn
