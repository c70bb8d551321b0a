"""``template``: a computed attribute rendered by sandboxed Jinja2.

What a template sees:

- ``user``: the SCIM resource as mapped and enriched so far (``user.name.givenName``,
  ``user.userName``, ``user.emails[0].value``);
- ``enterprise``: the enterprise extension (``enterprise.department``), ``{}`` when absent;
- ``ldap``: the entry's attributes, first value as text (``ldap.employeeNumber``; names are
  case-insensitive), ``ldap_all``: every value as a list; binary values are left out;
- ``dn``: the entry's DN.

Undefined names are errors (``StrictUndefined``): ``on_undefined = "problem"`` (the default)
records a problem and changes nothing, ``"skip"`` changes nothing silently. Use Jinja's own
``default`` filter or ``is defined`` for values that may be absent. The environment is Jinja's
``ImmutableSandboxedEnvironment``: no attribute access to internals and no mutation of the
values passed in; rendering is bounded in output size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from jinja2 import StrictUndefined, TemplateError, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from syncsvc.domain import LdapEntry
from syncsvc.enrich._base import NO_UPDATE, RuleFailed, Update
from syncsvc.enrich._paths import PathSetter
from syncsvc.enrich.defaults import is_empty
from syncsvc.mapping.targets import ENTERPRISE_USER

__all__ = ["TemplateRule", "compile_template", "template_environment"]

MAX_OUTPUT: Final = 4096  # characters; a SCIM attribute value, not a document


class _Caseless(dict[str, Any]):
    """LDAP attribute names are case-insensitive: ``ldap.employeeNumber`` finds ``employeenumber``."""

    def __missing__(self, key: str) -> Any:
        folded = key.lower()
        if folded != key and folded in self:
            return self[folded]
        raise KeyError(key)


def template_environment() -> ImmutableSandboxedEnvironment:
    """The one environment templates compile in: sandboxed, strict, no HTML autoescaping.

    SCIM values are plain text; whoever renders them as HTML (signatures, profile pages)
    escapes them there.
    """
    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=False)


_ENV: Final = template_environment()


def compile_template(source: str, problems: list[str]) -> tuple[Any, tuple[str, ...]]:
    """Compile ``source`` once; return it and the LDAP attributes it reads (``ldap.X``).

    The attributes let the pipeline ask the directory for them. A syntax error is appended to
    ``problems`` (with its line) and ``(None, ())`` returned.
    """
    try:
        tree = _ENV.parse(source)
        compiled = _ENV.from_string(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        problems.append(f"bad template{where}: {exc}")
        return None, ()
    names: dict[str, str] = {}
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        base = getattr(node, "node", None)
        if not (isinstance(base, nodes.Name) and base.name in ("ldap", "ldap_all")):
            continue
        if isinstance(node, nodes.Getattr):
            names.setdefault(node.attr.lower(), node.attr)
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) \
                and isinstance(node.arg.value, str):
            names.setdefault(node.arg.value.lower(), node.arg.value)
    return compiled, tuple(names.values())


def _context(resource: Mapping[str, Any], entry: LdapEntry) -> dict[str, Any]:
    first: _Caseless = _Caseless()
    every: _Caseless = _Caseless()
    for name, values in entry.attributes.items():
        texts = []
        for value in values:
            if isinstance(value, bytes):
                try:
                    value = value.decode("utf-8")
                except UnicodeDecodeError:
                    continue  # jpegPhoto and friends: not text
            texts.append(value)
        if texts:
            first[name] = texts[0]
            every[name] = texts
    return {
        "user": resource,
        "enterprise": resource.get(ENTERPRISE_USER) or {},
        "ldap": first,
        "ldap_all": every,
        "dn": entry.dn,
    }


class TemplateRule:
    """Render a template into ``target``.

    Args:
        target: where to write.
        template: the compiled template (:func:`compile_template`).
        source: its text, for messages.
        overwrite: replace a value the target already has (default); false only fills gaps.
        on_undefined: ``problem`` records an undefined name as a problem, ``skip`` ignores it.

    An empty rendering (after trimming) sets nothing.
    """

    __slots__ = ("_on_undefined", "_overwrite", "_setter", "_source", "_template")

    def __init__(self, target: PathSetter, template: Any, source: str, *, overwrite: bool = True,
                 on_undefined: Literal["problem", "skip"] = "problem") -> None:
        self._setter = target
        self._template = template
        self._source = source
        self._overwrite = overwrite
        self._on_undefined = on_undefined

    @property
    def label(self) -> str:
        return f"template {self._setter.path}"

    def __call__(self, resource: Mapping[str, Any], entry: LdapEntry) -> Update:
        if not self._overwrite and not is_empty(self._setter.get(resource)):
            return NO_UPDATE
        try:
            text = self._template.render(_context(resource, entry))
        except UndefinedError as exc:
            if self._on_undefined == "skip":
                return NO_UPDATE
            raise RuleFailed(f"{exc.message} in {self._source!r}") from None
        except SecurityError as exc:
            raise RuleFailed(f"refused by the sandbox: {exc}") from None
        except (TemplateError, ArithmeticError, TypeError, ValueError) as exc:
            raise RuleFailed(f"cannot render {self._source!r}: {exc}") from None
        text = " ".join(text.split()) if "\n" in text else text.strip()
        if not text:
            return NO_UPDATE
        if len(text) > MAX_OUTPUT:
            raise RuleFailed(f"rendered {len(text)} characters, more than {MAX_OUTPUT}")
        return Update(sets=((self._setter, text),))
