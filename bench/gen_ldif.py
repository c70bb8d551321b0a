#!/usr/bin/env python3
"""Write a realistic LDIF directory of any size, the same for the same arguments.

The tree has the shape of ``tests/fixtures/ldif/base.ldif``: the suffix entry, ``ou=people`` with
one OU per department, ``ou=groups`` and an empty ``ou=services``; parents come before children,
so the output loads with ``slapadd`` as is (``tests/support/slapd.py`` adds the service account).

- Users are inetOrgPerson entries with unique ``uid`` (``given.surname``, a number appended on
  collision) and the attributes base.ldif has; every 10th has a labeledURI, every 50th a tiny
  jpegPhoto. Managers form one tree: user 0 is the CEO (no manager), each department head
  reports to the CEO, and inside a department each user reports to an earlier member (fan-out 6).
- Groups: one groupOfNames per department (its users) while *--groups* allows, then team
  groups of 2-50 users (every 4th a groupOfUniqueNames); about a third of the groups nest a
  later group (edges only go to higher indices, so there are no cycles); with ``--posix-group``
  (the default) the last group is a posixGroup (memberUid, gidNumber).
- ``--with-operational`` adds ``entryUUID`` (a UUIDv5 of the seed and the DN),
  ``createTimestamp`` and ``modifyTimestamp`` (from the seeded generator, not the clock) to every
  entry: what a reader of the file needs in place of a server. slapadd keeps these values.

Example: ``python bench/gen_ldif.py --users 10000 --groups 500 --seed 7 -o /tmp/10k.ldif``.
"""

from __future__ import annotations

import argparse
import base64
import random
import re
import sys
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

# RFC 2849 SAFE-STRING: ASCII without NUL/CR/LF, not starting with space, ':' or '<'. A trailing
# space is legal but lost by many readers, so such values are base64-encoded too.
_LDIF_SAFE = re.compile(
    r"(?:[\x01-\x09\x0b\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f]"  # SAFE-INIT-CHAR
    r"[\x01-\x09\x0b\x0c\x0e-\x7f]*(?<! ))?"  # SAFE-CHARs, no trailing space
)

GIVEN_NAMES = (
    "Ada", "Alan", "Amara", "Anna", "Arjun", "Ben", "Carlos", "Chloé", "Daniel", "Emma",
    "Fatima", "Grace", "Hana", "Hiroshi", "Ines", "Ivan", "James", "José", "Kwame", "Lars",
    "Laura", "Leila", "Liam", "Łukasz", "Maria", "Mateo", "Mei", "Mohammed", "Nadia", "Noah",
    "Olivia", "Omar", "Priya", "Rahul", "Sara", "Sofia", "Søren", "Thomas", "Yuki", "Zoë",
)  # fmt: skip
SURNAMES = (
    "Abe", "Adeyemi", "Brown", "Chen", "Costa", "Dubois", "Dvořák", "Fischer", "García", "Gupta",
    "Hansen", "Ivanova", "Johnson", "Kim", "Kowalski", "Li", "Martin", "Müller", "Nakamura",
    "Nguyen", "Núñez", "Ødegaard", "O'Brien", "Okafor", "Patel", "Rossi", "Santos", "Schmidt",
    "Silva", "Smith", "Suzuki", "Taylor", "van Dijk", "Wang", "Williams", "Yilmaz",
)  # fmt: skip
DEPARTMENTS = (
    ("engineering", "ENG", ("Software Engineer", "Senior Software Engineer", "Staff Engineer",
                            "Site Reliability Engineer", "QA Engineer", "Data Engineer")),
    ("sales", "SAL", ("Account Executive", "Sales Development Representative",
                      "Solutions Engineer", "Sales Operations Analyst")),
    ("marketing", "MKT", ("Marketing Manager", "Content Strategist", "Product Marketer")),
    ("support", "SUP", ("Support Engineer", "Customer Success Manager", "Support Specialist")),
    ("finance", "FIN", ("Accountant", "Financial Analyst", "Controller")),
    ("operations", "OPS", ("IT Administrator", "Facilities Coordinator", "Office Manager")),
    ("people", "HR", ("Recruiter", "People Partner", "Payroll Specialist")),
    ("legal", "LEG", ("Counsel", "Paralegal", "Compliance Analyst")),
)  # fmt: skip
# street, l, st, postalCode, phone prefix, preferredLanguage
OFFICES = (
    ("500 Howard Street", "San Francisco", "CA", "94105", "+1 415 555", "en-US"),
    ("200 Park Avenue", "New York", "NY", "10166", "+1 212 555", "en-US"),
    ("Friedrichstraße 68", "Berlin", "Berlin", "10117", "+49 30 5555", "de"),
    ("12 Rue de Rivoli", "Paris", "Île-de-France", "75004", "+33 1 5555", "fr"),
    ("1-1 Marunouchi", "Chiyoda-ku", "Tokyo", "100-0005", "+81 3 5555", "ja"),
    ("Calle de Alcalá 45", "Madrid", "Madrid", "28014", "+34 91 555", "es"),
)  # fmt: skip
TEAM_WORDS = (
    "platform", "payments", "search", "mobile", "identity", "billing", "growth", "security",
    "data", "infra", "onboarding", "partners", "emea", "apac", "americas", "launch",
)  # fmt: skip
# A valid 4x4 baseline JPEG (305 bytes), written by libjpeg.
TINY_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERX"
    "RTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2Nj"
    "Y2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAAEAAQDASIAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAA"
    "AAP/xAAYEAEBAAMAAAAAAAAAAAAAAAAAAQIEE//EABUBAQEAAAAAAAAAAAAAAAAAAAME/8QAGhEAAgIDAAAAAAAA"
    "AAAAAAAAAAIBAxExMv/aAAwDAQACEQMRAD8Alr5XlACMzZ2V1cQf/9k="
)
FAN_OUT = 6
EPOCH = datetime(2021, 1, 4, 9, 0, tzinfo=UTC)
_ASCII_FOLD = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "ß": "ss", "æ": "ae", "'": ""})


def ldif_line(attribute: str, value: str | bytes) -> str:
    """One LDIF line, base64-encoded (``attr:: ...``) when RFC 2849 requires it."""
    if isinstance(value, str) and _LDIF_SAFE.fullmatch(value):
        return f"{attribute}: {value}"
    raw = value.encode() if isinstance(value, str) else value
    return f"{attribute}:: {base64.b64encode(raw).decode()}"


def ascii_fold(text: str) -> str:
    """*text* in lower-case ASCII letters, for uids and mail addresses (``Zoë`` -> ``zoe``)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII_FOLD))
    return "".join(c for c in decomposed if c.isascii() and c.isalnum()).lower()


@dataclass(frozen=True, slots=True)
class _User:
    dn: str
    uid: str
    department: int
    manager: int | None


@dataclass(slots=True)
class _Group:
    dn: str
    cn: str
    kind: str  # groupOfNames | groupOfUniqueNames | posixGroup
    description: str
    users: list[int]
    nested: list[str] = field(default_factory=list)  # DNs of member groups


@dataclass(frozen=True, slots=True)
class Options:
    """What to generate; the command-line arguments."""

    users: int
    groups: int
    seed: int
    base_dn: str
    with_operational: bool
    posix_group: bool


class Generator:
    """Builds the directory from seeded random generators and writes it entry by entry."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.rng = random.Random(options.seed)
        # Timestamps draw from their own generator so --with-operational changes nothing else.
        self.clock = random.Random(f"clock:{options.seed}")
        self.uuid_namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"syncsvc:gen_ldif:{options.seed}")
        self.people = f"ou=people,{options.base_dn}"
        self.groups_base = f"ou=groups,{options.base_dn}"
        wanted = max(2, -(-options.users // 25))  # at least ~25 people per department
        self.departments = DEPARTMENTS[: min(len(DEPARTMENTS), wanted)]
        self.users: list[_User] = []
        self.members: list[list[int]] = [[] for _ in self.departments]
        self.uid_counts: dict[str, int] = {}

    def write(self, out: TextIO) -> None:
        """Write the whole LDIF to *out*: tree entries, users, then groups."""
        self._write_tree(out)
        for index in range(self.options.users):
            self._write_user(out, index)
        for group in self._plan_groups():
            self._write_group(out, group)

    def _entry(self, out: TextIO, dn: str, lines: Sequence[str]) -> None:
        out.write(ldif_line("dn", dn) + "\n")
        out.write("\n".join(lines))
        if self.options.with_operational:
            created = EPOCH + timedelta(seconds=self.clock.randrange(3 * 365 * 86400))
            modified = created + timedelta(seconds=self.clock.randrange(365 * 86400))
            out.write(f"\nentryUUID: {uuid.uuid5(self.uuid_namespace, dn.lower())}")
            out.write(f"\ncreateTimestamp: {created:%Y%m%d%H%M%SZ}")
            out.write(f"\nmodifyTimestamp: {modified:%Y%m%d%H%M%SZ}")
        out.write("\n\n")

    def _write_tree(self, out: TextIO) -> None:
        base = self.options.base_dn
        attribute, value = base.split(",", 1)[0].split("=", 1)
        if attribute.lower() == "dc":
            top = ["objectClass: top", "objectClass: dcObject", "objectClass: organization",
                   ldif_line("dc", value), "o: Example Corp"]  # fmt: skip
        elif attribute.lower() == "o":
            top = ["objectClass: top", "objectClass: organization", ldif_line("o", value)]
        else:
            raise SystemExit(f"--base-dn must start with dc= or o=, not {attribute}=")
        self._entry(out, base, top)
        for ou, parent, description in (
            ("people", base, "Everyone who works here"),
            *((name, self.people, f"{name.title()} department") for name, _, _ in self.departments),
            ("groups", base, "Access and mailing groups"),
            ("services", base, "Service accounts"),
        ):
            self._entry(
                out,
                f"ou={ou},{parent}",
                ["objectClass: top", "objectClass: organizationalUnit", f"ou: {ou}",
                 ldif_line("description", description)],
            )  # fmt: skip

    def _unique_uid(self, given: str, surname: str) -> str:
        uid = f"{ascii_fold(given)}.{ascii_fold(surname)}"
        seen = self.uid_counts.get(uid, 0)
        self.uid_counts[uid] = seen + 1
        return f"{uid}{seen + 1}" if seen else uid

    def _write_user(self, out: TextIO, index: int) -> None:
        rng, heads = self.rng, len(self.departments)
        # User 0 is the CEO, users 1..heads head the departments in order, the rest are spread.
        department = max(index - 1, 0) if index <= heads else rng.randrange(heads)
        given, surname = rng.choice(GIVEN_NAMES), rng.choice(SURNAMES)
        uid = self._unique_uid(given, surname)
        name, code, titles = self.departments[department]
        members = self.members[department]
        if index == 0:
            manager, title = None, "Chief Executive Officer"
        elif index <= heads:
            manager, title = 0, f"VP {name.title()}"
        else:
            manager, title = members[(len(members) - 1) // FAN_OUT], rng.choice(titles)
        if index > 0:
            members.append(index)
        user = _User(f"uid={uid},ou={name},{self.people}", uid, department, manager)
        self.users.append(user)
        street, city, state, postcode, phone, language = rng.choice(OFFICES)
        lines = [
            "objectClass: top", "objectClass: person", "objectClass: organizationalPerson",
            "objectClass: inetOrgPerson",
            ldif_line("uid", uid), ldif_line("cn", f"{given} {surname}"),
            ldif_line("sn", surname), ldif_line("givenName", given),
            ldif_line("displayName", f"{given} {surname}"),
            ldif_line("mail", f"{uid}@example.com"),
            f"telephoneNumber: {phone} {1000 + index % 9000:04d}",
            f"mobile: {phone} {9999 - index % 9000:04d}",
            ldif_line("title", title), f"employeeNumber: {100001 + index}",
            f"departmentNumber: {code}-{100 + 10 * (index % 3)}",
            ldif_line("ou", name.title()), "o: Example Corp",
            ldif_line("l", city), ldif_line("st", state), ldif_line("postalCode", postcode),
            ldif_line("street", street), f"preferredLanguage: {language}",
        ]  # fmt: skip
        if manager is not None:
            lines.append(ldif_line("manager", self.users[manager].dn))
        if index % 10 == 3:
            lines.append(f"labeledURI: https://people.example.com/{uid} Profile")
        if index % 50 == 7:
            lines.append(ldif_line("jpegPhoto", TINY_JPEG))
        self._entry(out, user.dn, lines)

    def _plan_groups(self) -> list[_Group]:
        count, rng, users = self.options.groups, self.rng, self.options.users
        plans = [
            _Group(f"cn={name},{self.groups_base}", name, "groupOfNames", f"Everyone in {name}",
                   self.members[department] or [0])
            for department, (name, _, _) in enumerate(self.departments[:count])
        ]  # fmt: skip
        while len(plans) < count:
            team = len(plans) + 1
            cn = f"team-{TEAM_WORDS[team % len(TEAM_WORDS)]}-{team}"
            if self.options.posix_group and len(plans) == count - 1:
                kind = "posixGroup"
            else:
                kind = "groupOfUniqueNames" if team % 4 == 0 else "groupOfNames"
            members = sorted(rng.sample(range(users), min(rng.randint(2, 50), users)))
            plans.append(_Group(f"cn={cn},{self.groups_base}", cn, kind, f"Team {cn}", members))
        # Nest only towards later groups, so membership has no cycles; the first team group
        # (or the first group) always nests one, so any directory with 2+ groups has nesting.
        nestable = [i for i, group in enumerate(plans) if group.kind != "posixGroup"]
        first = len(self.departments) if len(nestable) > len(self.departments) + 1 else 0
        for position, parent in enumerate(nestable[:-1]):
            if parent == first or rng.random() < 0.33:
                plans[parent].nested.append(plans[rng.choice(nestable[position + 1 :])].dn)
        return plans

    def _write_group(self, out: TextIO, group: _Group) -> None:
        lines = ["objectClass: top", f"objectClass: {group.kind}", ldif_line("cn", group.cn),
                 ldif_line("description", group.description)]  # fmt: skip
        if group.kind == "posixGroup":
            lines.append(f"gidNumber: {10000 + int(group.cn.rsplit('-', 1)[1])}")
            lines += [ldif_line("memberUid", self.users[i].uid) for i in group.users]
        else:
            attribute = "member" if group.kind == "groupOfNames" else "uniqueMember"
            lines += [ldif_line(attribute, self.users[i].dn) for i in group.users]
            lines += [ldif_line(attribute, dn) for dn in group.nested]
        self._entry(out, group.dn, lines)


def parse_args(argv: Sequence[str] | None = None) -> tuple[Options, Path | None]:
    """The generator options and the output path (None: stdout) from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--users", type=int, default=200, help="number of users (default 200)")
    parser.add_argument("--groups", type=int, default=20, help="number of groups (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--base-dn", default="dc=example,dc=com", help="suffix of the tree")
    parser.add_argument(
        "--with-operational", action="store_true",
        help="add entryUUID, createTimestamp and modifyTimestamp to every entry",
    )  # fmt: skip
    parser.add_argument(
        "--posix-group", action=argparse.BooleanOptionalAction, default=True,
        help="make the last group a posixGroup (default: yes)",
    )  # fmt: skip
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    if args.users < 1 or args.groups < 0:
        parser.error("--users must be >= 1 and --groups >= 0")
    options = Options(
        users=args.users, groups=args.groups, seed=args.seed, base_dn=args.base_dn,
        with_operational=args.with_operational, posix_group=args.posix_group,
    )  # fmt: skip
    return options, args.output


def command_line(options: Options) -> str:
    """The canonical command that writes this output (to stdout), for the file's header."""
    args = [
        "bench/gen_ldif.py", f"--users {options.users}", f"--groups {options.groups}",
        f"--seed {options.seed}", f"--base-dn {options.base_dn}",
        "--with-operational" if options.with_operational else "",
        "--posix-group" if options.posix_group else "--no-posix-group",
    ]  # fmt: skip
    return " ".join(arg for arg in args if arg)


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the LDIF described by the command line."""
    options, output = parse_args(argv)
    header = f"# Generated by {command_line(options)}\n# Do not edit: regenerate instead.\n\n"
    if output is None:
        sys.stdout.write(header)
        Generator(options).write(sys.stdout)
    else:
        with output.open("w", encoding="utf-8", newline="\n") as out:
            out.write(header)
            Generator(options).write(out)
    return 0


def cached_ldif(data_dir: Path, users: int, groups: int, seed: int) -> Path:
    """The generated directory, made once per size and seed under ``data_dir`` and reused (with
    operational attributes, so modifyTimestamp is spread over past years and an incremental run
    reads only what changed). Written through a ``.partial`` file: an interrupted run leaves no
    truncated LDIF behind to be reused."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"u{users}-g{groups}-s{seed}.ldif"
    if not path.exists():
        partial = path.with_suffix(".partial")
        main(["--users", str(users), "--groups", str(groups), "--seed", str(seed),
              "--with-operational", "-o", str(partial)])
        partial.rename(path)
    return path


if __name__ == "__main__":
    sys.exit(main())
