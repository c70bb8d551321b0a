"""Properties of apply_patch: idempotent replace, no mutation of the input, no duplicates."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from syncsvc.errors import ScimError
from syncsvc.scim.patch import PatchOp, apply_patch, changed_paths
from syncsvc.scim.schema import CORE_USER, ENTERPRISE_USER, PROFILE_USER

TEXT = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")), min_size=1, max_size=30
).filter(lambda s: s.strip() != "")
LOWER = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
EMAIL = st.builds(lambda a, b: f"{a}@{b}.example", LOWER, LOWER)

# (path, value strategy, top-level name the path changes)
REPLACEABLE: list[tuple[str, st.SearchStrategy[Any], str]] = [
    ("title", TEXT, "title"),
    ("displayName", TEXT, "displayName"),
    ("name.givenName", TEXT, "name"),
    ("NAME.familyName", TEXT, "name"),
    ("active", st.booleans() | st.sampled_from(["True", "False", "true"]), "active"),
    (f"{ENTERPRISE_USER}:department", TEXT, ENTERPRISE_USER),
    (
        f"{ENTERPRISE_USER}:manager",
        st.text(alphabet="0123456789abcdef", min_size=8, max_size=8),
        ENTERPRISE_USER,
    ),
    (f"{PROFILE_USER}:headline", TEXT, PROFILE_USER),
    ('emails[type eq "work"].value', EMAIL, "emails"),
    ('emails[type eq "home"]', st.builds(lambda e: {"value": e}, EMAIL), "emails"),
    (
        "emails",
        st.lists(st.builds(lambda e: {"value": e, "type": "other"}, EMAIL), max_size=3),
        "emails",
    ),
]


@st.composite
def users(draw: st.DrawFn) -> dict[str, Any]:
    """A stored user with a random selection of optional attributes."""
    user: dict[str, Any] = {"schemas": [CORE_USER], "id": "u1", "userName": draw(TEXT)}
    if draw(st.booleans()):
        user["title"] = draw(TEXT)
    if draw(st.booleans()):
        user["name"] = {"givenName": draw(TEXT)}
    emails = draw(
        st.lists(
            st.tuples(EMAIL, st.sampled_from(["work", "home", "other"])),
            max_size=3,
            unique_by=lambda t: t[1],
        )
    )
    if emails:
        user["emails"] = [{"value": v, "type": t} for v, t in emails]
    if draw(st.booleans()):
        user["schemas"].append(ENTERPRISE_USER)
        user[ENTERPRISE_USER] = {"department": draw(TEXT), "manager": {"value": "m0"}}
    return user


@st.composite
def replaces(draw: st.DrawFn) -> tuple[list[PatchOp], set[str]]:
    """One to four replace operations and the top-level names they may change."""
    chosen = draw(st.lists(st.sampled_from(REPLACEABLE), min_size=1, max_size=4))
    ops = [PatchOp("replace", path, draw(values)) for path, values, _ in chosen]
    return ops, {name for _, _, name in chosen}


ANY_OP = st.one_of(
    st.builds(lambda op: op, replaces().map(lambda pair: pair[0][0])),
    st.sampled_from(
        [
            PatchOp("remove", "userName"),
            PatchOp("replace", "id", "other"),
            PatchOp("add", "shoeSize", 1),
            PatchOp("remove", 'emails[type eq "work"]'),
            PatchOp("remove", "emails"),
            PatchOp("add", "emails", {"value": "x@y.example", "primary": True}),
            PatchOp("replace", None, {"active": False, "name.givenName": "P"}),
            PatchOp("remove", f"{ENTERPRISE_USER}:manager"),
            PatchOp("replace", f"{ENTERPRISE_USER}:manager.displayName", "x"),
        ]
    ),
)


@settings(deadline=None)
@given(users(), replaces())
def test_replace_is_idempotent(user: dict[str, Any], case: tuple[list[PatchOp], set[str]]) -> None:
    """Applying the same replace operations twice gives the result of applying them once."""
    ops, _ = case

    once = apply_patch(user, ops, "User")

    assert once == apply_patch(once, ops, "User")


@settings(deadline=None)
@given(users(), st.lists(ANY_OP, min_size=1, max_size=5))
def test_input_never_mutated(user: dict[str, Any], ops: list[PatchOp]) -> None:
    """Whether the patch succeeds or raises, the input resource is unchanged."""
    before = copy.deepcopy(user)

    try:
        apply_patch(user, ops, "User")
    except ScimError:
        pass

    assert before == user


@settings(deadline=None)
@given(users(), replaces())
def test_changed_paths_within_targets(
    user: dict[str, Any], case: tuple[list[PatchOp], set[str]]
) -> None:
    """changed_paths names only the top-level attributes or URNs the operations target."""
    ops, targets = case

    after = apply_patch(user, ops, "User")

    assert changed_paths(user, after) <= {t.lower() for t in targets} | targets
    assert set() == changed_paths(after, copy.deepcopy(after))


@settings(deadline=None)
@given(users(), st.lists(EMAIL, min_size=1, max_size=3))
def test_add_twice_equals_add_once(user: dict[str, Any], addresses: list[str]) -> None:
    """add of emails already added adds nothing: equal values are not duplicated."""
    ops = [PatchOp("add", "emails", [{"value": a, "type": "work"} for a in addresses])]

    once = apply_patch(user, ops, "User")

    assert once == apply_patch(once, ops, "User")
