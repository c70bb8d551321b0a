"""E-mail signatures from admin-supplied Jinja2 templates, rendered in a sandbox.

The templates are the admin's code, the values are the users': the environment is
:class:`~jinja2.sandbox.SandboxedEnvironment` (no attribute access to internals, bounded
``range``), HTML templates autoescape every value, and the context holds only plain strings,
lists and dicts built from a :class:`ProfileView`. A template that cannot be read, compiled or
rendered raises :class:`SignatureTemplateError`, which names the file, the line and the problem.
"""

from __future__ import annotations

import hashlib
import types
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from syncsvc.errors import ScimError
from syncsvc.profiles._qr import QrCode
from syncsvc.profiles._view import ProfileView

__all__ = ["SignatureKind", "SignatureTemplateError", "SignatureTemplates", "signature_context"]

SignatureKind = Literal["html", "txt"]

_DEFAULTS: Final[dict[SignatureKind, str]] = {"html": "signature.html.j2", "txt": "signature.txt.j2"}

# socialLinks.type -> the label a signature shows.
_LABELS: Final = {"linkedin": "LinkedIn", "x": "X", "github": "GitHub", "website": "Website",
                  "other": "Link"}


class SignatureTemplateError(ScimError):
    """The signature template cannot be read, compiled or rendered (422, the problem named).

    Not a 500: the server works, the admin-supplied template does not, and the detail says
    which line of which file to fix.
    """

    status: ClassVar[int] = 422


def _finalize(value: Any) -> Any:
    # None prints as "" rather than "None": templates test `{% if x %}` but may forget.
    return "" if value is None else value


@dataclass(frozen=True, slots=True)
class _Compiled:
    name: str
    source: str
    template: jinja2.Template | None
    problem: str | None


class SignatureTemplates:
    """The HTML and text signature templates, read and compiled once.

    Args:
        html: path of the HTML template; None for the built-in one.
        txt: path of the text template; None for the built-in one.
    """

    def __init__(self, *, html: Path | None = None, txt: Path | None = None) -> None:
        self._compiled: dict[SignatureKind, _Compiled] = {
            "html": self._compile("html", html),
            "txt": self._compile("txt", txt),
        }
        digest = hashlib.sha256()
        for kind in ("html", "txt"):
            digest.update(self._compiled[kind].source.encode())
            digest.update(b"\0")
        self.fingerprint = digest.hexdigest()[:16]
        """Changes whenever a template's text does (part of the signature ETags)."""

    @staticmethod
    def _compile(kind: SignatureKind, path: Path | None) -> _Compiled:
        if path is None:
            name = f"built-in {_DEFAULTS[kind]}"
            source = (resources.files("syncsvc.profiles") / "templates" / _DEFAULTS[kind]).read_text(
                encoding="utf-8")
        else:
            name = str(path)
            try:
                source = path.read_text(encoding="utf-8")
            except OSError as exc:
                return _Compiled(name, "", None, f"cannot read {name}: {exc.strerror or exc}")
            except UnicodeDecodeError:
                return _Compiled(name, "", None, f"{name} is not UTF-8 text")
        env = SandboxedEnvironment(
            autoescape=kind == "html", finalize=_finalize, keep_trailing_newline=True,
            loader=jinja2.FunctionLoader(lambda _n: (source, name, lambda: True)),
        )
        try:
            template = env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            return _Compiled(name, source, None, f"{name}, line {exc.lineno}: {exc.message}")
        return _Compiled(name, source, template, None)

    def render(self, kind: SignatureKind, context: dict[str, Any]) -> str:
        """The signature of ``kind`` for ``context`` (see :func:`signature_context`).

        Raises:
            SignatureTemplateError: the template is unreadable, invalid, or fails on this user.
        """
        compiled = self._compiled[kind]
        if compiled.template is None:
            raise SignatureTemplateError(f"signature template {compiled.problem}")
        try:
            return compiled.template.render(context)
        except Exception as exc:  # the admin's template code: any failure is its problem
            where = _template_line(exc.__traceback__, compiled.name)
            raise SignatureTemplateError(
                f"signature template {compiled.name}{where} does not render: "
                f"{type(exc).__name__}: {exc}") from exc


def _template_line(tb: types.TracebackType | None, name: str) -> str:
    """", line N" of the template frame deepest in the traceback, when there is one."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == name:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f", line {line}" if line else ""


def signature_context(view: ProfileView, *, profile_url: str, qr: QrCode | None) -> dict[str, Any]:
    """The template context: plain values only (nothing with methods a template could abuse)."""
    user = {
        "name": view.name,
        "userName": view.user_name,
        "displayName": view.display_name,
        "givenName": view.given_name,
        "familyName": view.family_name,
        "pronouns": view.pronouns,
        "title": view.title,
        "department": view.department,
        "organization": view.organization,
        "headline": view.headline,
        "bio": view.bio,
        "email": view.email,
        "phone": view.phone("work") or view.phone("", "other"),
        "mobile": view.phone("mobile"),
        "location": view.location,
        "office": view.office,
        "photoUrl": view.photo_url,
        "manager": view.manager_name,
        "skills": list(view.skills),
        "languages": list(view.languages),
        "socialLinks": [{"type": link.type, "label": _LABELS.get(link.type, link.type.title()),
                         "url": link.url} for link in view.social_links],
    }
    qr_values = None
    if qr is not None:
        qr_values = {"svg": Markup(qr.svg_inline(scale=3)), "dataUri": qr.png_data_uri()}
    return {"user": user, "profileUrl": profile_url, "qr": qr_values}
