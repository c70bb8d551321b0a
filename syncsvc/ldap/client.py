"""The live LDAP source: :class:`Ldap3Directory`, and :func:`open_directory` to pick a source.

ldap3 is synchronous, so every blocking call runs in a worker thread (``asyncio.to_thread``)
on a connection of its own (ldap3's ``SYNC`` strategy, measured 1.7x cheaper than
``SAFE_SYNC``): a search opens a connection, reads its pages and closes it, also when the
consumer stops early. Users and groups can therefore be read concurrently.

Foreign errors are translated in one place, :func:`ldap_errors`: a lost connection becomes
:class:`~syncsvc.errors.DirectoryUnavailable`, any other ldap3 failure a
:class:`~syncsvc.errors.DirectoryError`; a non-zero result code is always an error (a
``sizeLimitExceeded`` is never a silently short read).

Speed: ``get_info=NONE`` (the root DSE is read once, by :meth:`Ldap3Directory.server_info`),
``check_names=False``, and entries are read as raw bytes by a specialised BER reader
(:mod:`syncsvc.ldap.fastber`) installed on each connection: 10k users read at ~4-5.6k entries/s
against ~1.4k/s through ldap3's own response decoding (2 cores, page size 500-1000).
"""

from __future__ import annotations

import asyncio
import math
import re
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import structlog
from ldap3 import BASE, DEREF_NEVER, NO_ATTRIBUTES, NONE, SUBTREE, SYNC, Connection, Server, Tls
from ldap3.core.exceptions import (
    LDAPCertificateError,
    LDAPCommunicationError,
    LDAPException,
    LDAPResponseTimeoutError,
    LDAPSessionTerminatedByServerError,
    LDAPSocketReceiveError,
    LDAPSSLConfigurationError,
)
from ldap3.core.results import RESULT_CODES
from ldap3.operation.search import search_operation
from ldap3.strategy.base import (
    RESPONSE_COMPLETE,
    SESSION_TERMINATED_BY_SERVER,
    TRANSACTION_ERROR,
    BaseStrategy,
)
from ldap3.utils.asn1 import decode_controls, decode_message_fast

from syncsvc.domain import AttrValue, LdapEntry
from syncsvc.errors import (
    ConfigError,
    ContentSyncRefreshRequired,
    DirectoryError,
    DirectoryUnavailable,
)
from syncsvc.ldap.contentsync import (
    SYNC_INFO_OID,
    SYNC_REQUEST_OID,
    ContentSyncResult,
    RefreshStream,
    SyncDone,
    decode_sync_info,
    sync_done_of,
    sync_request_control,
    sync_state_of,
)
from syncsvc.ldap.fastber import AttributeNames, parse_search_entry, read_entry
from syncsvc.ldap.flavors import Flavor
from syncsvc.ldap.ldif import LdifDirectory
from syncsvc.ldap.normalize import complete_ranges, decode_attributes, has_ranges, to_entry
from syncsvc.ldap.protocol import Directory, ServerInfo
from syncsvc.ldap.queries import SearchQuery
from syncsvc.settings import LdapSettings

__all__ = ["Ldap3Directory", "ldap_errors", "open_directory", "redact_url"]

log = structlog.get_logger(__name__)

PAGED_RESULTS_OID: Final = "1.2.840.113556.1.4.319"
_RESULT_SUCCESS: Final = 0
_RESULT_SYNC_REFRESH_REQUIRED: Final = 4096
_RESULT_INVALID_CREDENTIALS: Final = 49
_UNAVAILABLE_RESULTS: Final = frozenset({51, 52})  # busy, unavailable: try the next server


def redact_url(url: str) -> str:
    """``url`` without any user information (LDAP URLs should carry none, but never log it)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _looks_like_tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError | LDAPCertificateError | LDAPSSLConfigurationError):
            return True
        text = str(seen).lower()
        if "certificate" in text or "ssl" in text or "tls" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextmanager
def ldap_errors(url: str, action: str) -> Iterator[None]:
    """Translate ldap3 and socket errors raised by ``action`` against ``url``."""
    try:
        yield
    except (DirectoryError, ConfigError):
        raise
    except (LDAPCommunicationError, LDAPResponseTimeoutError, OSError) as exc:
        if isinstance(exc, TimeoutError):  # the server holds the connection but does not answer
            raise DirectoryUnavailable(
                f"{action} on {url}: timed out: no answer within ldap.read_timeout") from exc
        raise DirectoryUnavailable(f"{action} on {url}: connection lost: {exc}") from exc
    except LDAPException as exc:
        raise DirectoryError(f"{action} on {url} failed: {exc}") from exc


def _check(result: Mapping[str, Any] | None, action: str, url: str) -> None:
    if result is None:
        raise DirectoryUnavailable(f"{action} on {url}: no response")
    code = result.get("result", -1)
    if code == _RESULT_SUCCESS:
        return
    description = result.get("description") or RESULT_CODES.get(code, str(code))
    message = (result.get("message") or "").strip()
    detail = f"{description} ({message})" if message else description
    if code == _RESULT_SYNC_REFRESH_REQUIRED:
        raise ContentSyncRefreshRequired(f"{action} on {url}: {detail}")
    if code in _UNAVAILABLE_RESULTS:
        raise DirectoryUnavailable(f"{action} on {url} failed: {detail}")
    raise DirectoryError(f"{action} on {url} failed: {detail}")


# --- fast decoding --------------------------------------------------------------------------


def _entry_response(
    strategy: Any,
    parsed: tuple[str, Mapping[str, Sequence[AttrValue]], tuple[int, int] | None],
    data: bytes,
    key: str = "raw_attributes",
) -> dict[str, Any]:
    dn, attributes, controls = parsed
    result: dict[str, Any] = {"type": "searchResEntry", "dn": dn, key: attributes}
    if key == "raw_attributes":
        result["attributes"] = {}
    if controls is not None:
        result["controls"] = dict(
            strategy.decode_control_fast(c[3]) for c in decode_controls(data, *controls)
        )
    return result


def _install_raw_entry_decoder(conn: Connection, text: frozenset[str] | None = None) -> None:
    """Make ``conn`` read searchResEntry messages as raw bytes only, with a specialised parser.

    ldap3 decodes every entry twice (``attributes`` through a CaseInsensitiveDict, and
    ``raw_attributes``) with a generic recursive BER walker; we only read the raw values and
    decode them ourselves. Entries go through :func:`~syncsvc.ldap.fastber.parse_search_entry`,
    every other message (and any entry it does not recognise) through ldap3's own decoder.
    The overrides are instance attributes of this connection's strategy: nothing global is
    patched. ``_get_response`` mirrors ``ldap3.strategy.sync.SyncStrategy._get_response``
    (ldap3 is pinned below 2.10).

    With ``text`` (the binary attribute names), entries are decoded as they are read, by
    :func:`~syncsvc.ldap.fastber.read_entry`, into ``decoded_attributes`` (what
    :func:`~syncsvc.ldap.normalize.decode_attributes` makes of ``raw_attributes``), except those
    carrying AD range retrieval, which stay raw, and the socket is read by :func:`_receiver`.
    Installing again replaces the earlier decoder.
    """
    strategy = conn.strategy
    # The class's method, not an instance override: installing twice must not stack decoders.
    original = type(strategy).decode_response_fast.__get__(strategy)
    names: AttributeNames = {}
    receive = _receiver(conn) if text is not None else strategy.receiving

    def decode(ldap_message: dict[str, Any]) -> dict[str, Any]:
        if ldap_message["protocolOp"] != 4:  # not a searchResEntry
            return original(ldap_message)  # type: ignore[no-any-return]
        payload = ldap_message["payload"]
        raw: dict[str, list[bytes]] = {}
        for attribute in payload[1][3]:
            name = attribute[3][0][3].decode("utf-8").lower()
            raw.setdefault(name, []).extend([v[3] for v in attribute[3][1][3]])
        result: dict[str, Any] = {
            "type": "searchResEntry",
            "dn": payload[0][3].decode("utf-8"),
            "raw_attributes": raw,
            "attributes": {},
        }
        if ldap_message["controls"]:
            result["controls"] = dict(
                strategy.decode_control_fast(c[3]) for c in ldap_message["controls"]
            )
        return result

    def get_response(message_id: int, timeout: Any) -> Any:
        responses: list[dict[str, Any]] = []
        while True:
            messages = receive()
            if not messages:
                return SESSION_TERMINATED_BY_SERVER
            for data in messages:
                if not data:
                    continue
                if conn.usage:
                    conn._usage.update_received_message(len(data))  # noqa: SLF001
                if text is not None:
                    decoded = read_entry(data, text, names)
                    if decoded is not None and decoded[0] == message_id:
                        responses.append(
                            _entry_response(strategy, decoded[1:], data, "decoded_attributes")
                        )
                        continue
                parsed = parse_search_entry(data)
                if parsed is not None and parsed[0] == message_id:
                    responses.append(_entry_response(strategy, parsed[1:], data))
                    continue
                message = decode_message_fast(data)
                response = decode(message)
                received_id = int(message["messageID"])
                if received_id == message_id:
                    responses.append(response)
                    if response["type"] not in ("searchResEntry", "searchResRef", "intermediateResponse"):
                        responses.append(RESPONSE_COMPLETE)
                        return responses
                elif received_id == 0:  # unsolicited notification (RFC 4511 4.4)
                    if response.get("responseName") == "1.3.6.1.4.1.1466.20036":
                        return SESSION_TERMINATED_BY_SERVER  # notice of disconnection
                    if response.get("responseName") == "2.16.840.1.113719.1.27.103.4":
                        return TRANSACTION_ERROR
                    raise LDAPSocketReceiveError("unknown unsolicited notification from server")
                else:
                    raise LDAPSocketReceiveError("invalid messageId received")

    strategy.decode_response_fast = decode
    strategy._get_response = get_response  # noqa: SLF001


_RECV_SIZE: Final = 65536

def _receiver(conn: Connection) -> Callable[[], list[bytes]]:
    """A replacement for ldap3's ``receiving``: the complete LDAP messages waiting on ``conn``.

    ldap3 reads 4 KiB per ``recv`` and grows an immutable buffer by concatenation, so a large
    entry (a group of 100k members is megabytes) is copied once per 4 KiB read. Here the
    socket is read 64 KiB at a time into one growing buffer; bytes past the last complete
    message wait for the next call. An empty list: the server closed the connection.
    Socket errors (a read timeout is a ``TimeoutError``) propagate to :func:`ldap_errors`.
    """
    pending = bytearray()

    def receive() -> list[bytes]:
        messages: list[bytes] = []
        while True:
            while True:
                size = BaseStrategy.compute_ldap_message_size(pending)
                if size < 0 or len(pending) < size:
                    break
                messages.append(bytes(pending[:size]))
                del pending[:size]
            if messages:
                return messages
            sock = conn.socket
            if sock is None:
                raise LDAPSocketReceiveError("connection closed")
            data = sock.recv(_RECV_SIZE)
            if not data:
                return messages
            pending.extend(data)

    return receive


# --- the directory --------------------------------------------------------------------------


class _Unreachable(Exception):
    """One server could not be used; the next URL is tried."""


class Ldap3Directory:
    """An LDAP server (or a failover list of them) read through ldap3.

    Args:
        settings: URLs, bind, TLS, timeouts and page size.
        flavor: the anchor and change attribute to request, the binary attributes.
    """

    def __init__(self, settings: LdapSettings, flavor: Flavor) -> None:
        if not settings.url:
            raise ConfigError(["ldap.url: at least one ldap:// or ldaps:// URL is required"])
        for url in settings.url:
            if urlsplit(url).scheme.lower() not in ("ldap", "ldaps"):
                raise ConfigError([f"ldap.url: {redact_url(url)} is not an ldap:// or ldaps:// URL"])
        self._settings = settings
        self._flavor = flavor
        self.description = ", ".join(redact_url(u) for u in settings.url)
        self._lock = threading.Lock()
        self._connections: set[Connection] = set()

    # -- connections (blocking; run in worker threads) --

    def _tls(self) -> Tls:
        verify = self._settings.tls_verify
        return Tls(
            validate=ssl.CERT_REQUIRED if verify else ssl.CERT_NONE,
            ca_certs_file=self._settings.ca_file or None,
        )

    def _open_one(self, url: str) -> Connection:
        settings = self._settings
        parts = urlsplit(url)
        use_ssl = parts.scheme.lower() == "ldaps"
        tls_wanted = use_ssl or settings.start_tls
        server = Server(
            parts.hostname or "localhost",
            port=parts.port or (636 if use_ssl else 389),
            use_ssl=use_ssl,
            tls=self._tls() if tls_wanted else None,
            get_info=NONE,
            connect_timeout=settings.connect_timeout,
        )
        conn = Connection(
            server,
            user=settings.bind_dn or None,
            password=settings.bind_password or None,
            client_strategy=SYNC,
            read_only=True,
            check_names=False,
            raise_exceptions=False,
            auto_referrals=False,
            auto_range=False,
            return_empty_attributes=False,
            # ldap3 packs this into SO_RCVTIMEO as whole seconds: it must be an int.
            receive_timeout=max(1, math.ceil(settings.read_timeout)),
        )
        shown = redact_url(url)
        try:
            conn.open(read_server_info=False)
            if settings.start_tls and not use_ssl and not conn.start_tls(read_server_info=False):
                raise _Unreachable(f"StartTLS refused: {_describe(conn.result)}")
            bound = conn.bind(read_server_info=False)
        except _Unreachable:
            _close_quietly(conn)
            raise
        except (LDAPException, OSError) as exc:
            _close_quietly(conn)
            if tls_wanted and _looks_like_tls_failure(exc):
                raise _Unreachable(f"TLS certificate verification failed: {_root_message(exc)}") from exc
            raise _Unreachable(_root_message(exc)) from exc
        if not bound:
            result = conn.result or {}
            _close_quietly(conn)
            who = settings.bind_dn or "anonymous"
            if result.get("result") in _UNAVAILABLE_RESULTS:
                raise _Unreachable(f"bind as {who}: {_describe(result)}")
            description = result.get("description") or "no response"
            if result.get("result") == _RESULT_INVALID_CREDENTIALS:
                raise DirectoryError(f"bind as {who} failed: invalidCredentials")
            raise DirectoryError(f"bind as {who} failed on {shown}: {description}")
        _install_raw_entry_decoder(conn)
        return conn

    def _connect(self) -> tuple[Connection, str]:
        failures: list[str] = []
        for url in self._settings.url:
            shown = redact_url(url)
            try:
                conn = self._open_one(url)
            except _Unreachable as exc:
                failures.append(f"{shown}: {exc}")
                log.warning("ldap.failover", url=shown, error=str(exc))
                continue
            with self._lock:
                self._connections.add(conn)
            log.info("ldap.connected", url=shown)
            return conn, shown
        raise DirectoryUnavailable("no directory server reachable: " + "; ".join(failures))

    def _release(self, conn: Connection) -> None:
        with self._lock:
            self._connections.discard(conn)
        _close_quietly(conn)

    # -- blocking operations --

    def _server_info(self) -> ServerInfo:
        conn, url = self._connect()
        try:
            with ldap_errors(url, "root DSE read"):
                conn.search(
                    "", "(objectClass=*)", BASE, dereference_aliases=DEREF_NEVER,
                    attributes=["supportedControl", "dsServiceName", "highestCommittedUSN"],
                )  # fmt: skip
            _check(conn.result, "root DSE read", url)
            raw: dict[str, list[bytes]] = {}
            for response in conn.response or ():
                if response.get("type") == "searchResEntry":
                    raw = response["raw_attributes"]
            attrs = decode_attributes(raw)
            controls = {str(v) for v in attrs.get("supportedcontrol", ())}
            service = attrs.get("dsservicename", ())
            usn = attrs.get("highestcommittedusn", ())
            return ServerInfo(
                content_sync=SYNC_REQUEST_OID in controls,
                ad_service_name=str(service[0]) if service else None,
                ad_highest_usn=int(usn[0]) if usn and str(usn[0]).isdigit() else None,
                url=url,
            )
        finally:
            self._release(conn)

    def _entries(
        self, conn: Connection, url: str, responses: Sequence[Mapping[str, Any]]
    ) -> list[LdapEntry]:
        anchor = self._flavor.anchor_attribute
        binary = self._flavor.binary_attributes
        entries: list[LdapEntry] = []
        for response in responses:
            kind = response.get("type")
            if kind != "searchResEntry":
                if kind == "searchResRef":
                    log.debug("ldap.reference_skipped", uris=response.get("uri"))
                continue
            attributes = response.get("decoded_attributes")
            if attributes is None:  # read raw: AD range retrieval, or a decoder without text
                raw = response["raw_attributes"]
                if has_ranges(raw):
                    raw = complete_ranges(response["dn"], raw, self._range_fetcher(conn, url))
                attributes = decode_attributes(raw, binary)
            entry = to_entry(response["dn"], attributes, anchor)
            if entry is None:
                log.warning("ldap.entry_without_anchor", dn=response["dn"], anchor_attribute=anchor)
                continue
            entries.append(entry)
        return entries

    def _range_fetcher(self, conn: Connection, url: str) -> Any:
        def fetch(dn: str, attribute: str) -> Mapping[str, Sequence[bytes]]:
            with ldap_errors(url, f"range read of {dn}"):
                conn.search(dn, "(objectClass=*)", BASE, dereference_aliases=DEREF_NEVER,
                            attributes=[attribute])
            _check(conn.result, f"range read of {dn}", url)
            for response in conn.response or ():
                if response.get("type") == "searchResEntry":
                    # Decoded (a search connection reads text): the entry carries no range, so
                    # it holds no chunk either.
                    return response.get("raw_attributes") or {}  # type: ignore[no-any-return]
            return {}

        return fetch

    def _read_page(
        self, conn: Connection, url: str, query: SearchQuery, cookie: bytes | None
    ) -> tuple[list[LdapEntry], bytes | None]:
        action = f"search {query.filter} under {query.base}"
        with ldap_errors(url, action):
            conn.search(
                query.base, query.filter, SUBTREE,
                dereference_aliases=DEREF_NEVER,
                attributes=list(query.attributes),
                paged_size=self._settings.page_size,
                paged_cookie=cookie,
                paged_criticality=True,
            )  # fmt: skip
            result = conn.result
            responses = conn.response or []
        _check(result, action, url)
        paged = (result.get("controls") or {}).get(PAGED_RESULTS_OID) or {}
        next_cookie = (paged.get("value") or {}).get("cookie") or None
        with ldap_errors(url, action):
            return self._entries(conn, url, responses), next_cookie

    def _read_refresh(
        self, query: SearchQuery, cookie: bytes | None, channel: _RefreshChannel
    ) -> None:
        """The reader thread of one content sync: its pages, then its summary, into ``channel``."""
        outcome: ContentSyncResult | BaseException
        try:
            outcome = self._stream_refresh(query, cookie, channel)
        except _ReaderStopped:
            return
        except BaseException as exc:  # raised again on the event loop, in content_sync
            outcome = exc
        channel.finish(outcome)

    def _stream_refresh(
        self, query: SearchQuery, cookie: bytes | None, channel: _RefreshChannel
    ) -> ContentSyncResult:
        conn, url = self._connect()
        channel.connection = conn
        ranges: list[tuple[Connection, str]] = []

        def fetch_range(dn: str, attribute: str) -> Mapping[str, Sequence[bytes]]:
            # The refresh's own connection is busy streaming: ranged values (AD) are read on a
            # second one, opened on first need.
            if not ranges:
                ranges.append(self._connect())
            return self._range_fetcher(*ranges[0])(dn, attribute)  # type: ignore[no-any-return]

        action = f"content sync {query.filter} under {query.base}"
        stream = RefreshStream(self._settings.page_size)
        result: Mapping[str, Any] | None = None
        pages = 0
        try:
            with ldap_errors(url, action):
                for response in _refresh_responses(conn, query, cookie):
                    if channel.stopped:
                        raise _ReaderStopped
                    if response["type"] == "searchResDone":
                        result = response
                        break
                    page = self._refresh_step(stream, response, url, fetch_range)
                    if page:
                        pages += 1
                        log.debug("ldap.content_sync_page", entries=len(page), page_no=pages)
                        channel.put(page)
            _check(result, action, url)
            assert result is not None  # _check raised otherwise
            stream.done(sync_done_of(result.get("controls")) or SyncDone())
            tail = stream.take_page()
            if tail:
                pages += 1
                channel.put(tail)
        finally:
            for held, _ in ranges:
                self._release(held)
            self._release(conn)
        outcome = stream.result()
        log.info(
            "ldap.content_sync_read",
            entries=stream.sent,
            pages=pages,
            deleted=len(outcome.deleted),
            present=None if outcome.present is None else len(outcome.present),
            refresh_deletes=outcome.refresh_deletes,
        )
        return outcome

    def _refresh_step(
        self,
        stream: RefreshStream,
        response: Mapping[str, Any],
        url: str,
        fetch_range: Callable[[str, str], Mapping[str, Sequence[bytes]]],
    ) -> list[LdapEntry] | None:
        """Fold one response of a refresh into ``stream``; a page when it filled one."""
        kind = response.get("type")
        if kind == "intermediateResponse":
            if response.get("responseName") == SYNC_INFO_OID:
                stream.info(decode_sync_info(response.get("responseValue") or b""))
            return None
        if kind != "searchResEntry":
            return None
        state = sync_state_of(response.get("controls"))
        if state is None:
            raise DirectoryError(f"content sync on {url}: entry {response['dn']} has no Sync State")
        raw = response["raw_attributes"]
        entry: LdapEntry | None = None
        if raw:
            if has_ranges(raw):
                raw = complete_ranges(response["dn"], raw, fetch_range)
            attributes = decode_attributes(raw, self._flavor.binary_attributes)
            anchor = self._flavor.anchor_attribute
            entry = to_entry(response["dn"], attributes, anchor) or LdapEntry(
                dn=response["dn"], anchor=state.entry_uuid, attributes=attributes
            )
        return stream.entry(state, entry)

    # -- the async surface --

    async def server_info(self) -> ServerInfo:
        """Read the root DSE: content sync support, AD's DC name and highest USN."""
        return await asyncio.to_thread(self._server_info)

    async def search(self, query: SearchQuery) -> AsyncIterator[list[LdapEntry]]:
        """Paged search (RFC 2696): one list of entries per page, on a connection of its own.

        Raises:
            DirectoryUnavailable: no server reachable, or the connection dropped mid-read.
            DirectoryError: the server answered with a non-zero result (e.g. sizeLimitExceeded).
        """
        conn, url = await asyncio.to_thread(self._connect)
        try:
            # This connection serves this search alone: its entries are decoded as they are
            # read, in one pass (fastber.read_entry), not parsed raw and then decoded.
            _install_raw_entry_decoder(conn, self._flavor.binary_attributes)
            cookie: bytes | None = None
            page_no = 0
            while True:
                entries, cookie = await asyncio.to_thread(self._read_page, conn, url, query, cookie)
                page_no += 1
                log.debug("ldap.page_read", entries=len(entries), page_no=page_no)
                yield entries
                if not cookie:
                    return
        finally:
            # Also on aclose()/GeneratorExit: an abandoned paged search is released with the
            # connection (the unbind ends it on the server).
            await asyncio.to_thread(self._release, conn)

    async def content_sync(
        self,
        query: SearchQuery,
        cookie: bytes | None,
        on_page: Callable[[list[LdapEntry]], Awaitable[None]] | None = None,
    ) -> ContentSyncResult:
        """RFC 4533 refreshOnly read of ``query``'s scope since ``cookie`` (all without one).

        The server returns the whole refresh in one search (syncprov cannot page it), so it is
        read as a stream: a thread of its own reads the responses one by one and hands over
        pages of ``ldap.page_size`` entries, each awaited through ``on_page`` while the rest
        is still being read; at most two pages wait, so a slow writer holds the reader back
        (and the server, through TCP). The summary (deletions, present set, cookie) comes back
        only after the whole refresh was read and every page written. Without ``on_page`` the
        entries are collected into the result (small reads, tests).

        If ``on_page`` raises or the caller is cancelled, the reader stops and its connection
        is closed before this returns.

        Raises:
            ContentSyncRefreshRequired: the server cannot serve ``cookie``; do a full run.
        """
        channel = _RefreshChannel(asyncio.get_running_loop(), _PAGES_AHEAD)
        reader = threading.Thread(
            target=self._read_refresh, args=(query, cookie, channel),
            name=CONTENT_SYNC_THREAD, daemon=True,
        )  # fmt: skip
        collected: list[LdapEntry] = []
        reader.start()
        try:
            while True:
                item = await channel.get()
                if isinstance(item, ContentSyncResult):
                    break
                if isinstance(item, BaseException):
                    raise item
                if on_page is None:
                    collected.extend(item)
                else:
                    await on_page(item)
        finally:
            channel.stop()
            await _join_reader(reader, channel)
        return item if on_page is not None else replace(item, entries=collected)

    async def aclose(self) -> None:
        """Close connections that are still open (searches not read to the end)."""
        with self._lock:
            remaining = list(self._connections)
            self._connections.clear()
        for conn in remaining:
            await asyncio.to_thread(_close_quietly, conn)


# --- content sync as a stream ---------------------------------------------------------------

CONTENT_SYNC_THREAD: Final = "syncsvc-content-sync"
_PAGES_AHEAD: Final = 2  # pages read ahead of the writer: with the page in hand, the memory bound
_STOP_POLL: Final = 0.05  # how often a reader waiting for room looks whether it should stop
_STOP_GRACE: Final = 0.5  # then a reader blocked in a socket read is woken by a shutdown
_NOTICE_OF_DISCONNECTION: Final = "1.3.6.1.4.1.1466.20036"


class _ReaderStopped(Exception):
    """The consumer of a refresh went away: its reader thread ends without a word."""


class _RefreshChannel:
    """Hands one refresh from its reader thread to the event loop, with backpressure.

    The thread's :meth:`put` blocks while ``depth`` pages wait unread; :meth:`finish` hands
    over the summary or the reader's exception. :meth:`stop` (the consumer is done, or gave
    up) makes the thread give up at its next step; :meth:`wake` ends a socket read it is
    blocked in.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, depth: int) -> None:
        self._loop = loop
        self._items: asyncio.Queue[list[LdapEntry] | ContentSyncResult | BaseException] = (
            asyncio.Queue()
        )
        self._room = threading.Semaphore(depth)
        self._stopped = threading.Event()
        self.connection: Connection | None = None

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def stop(self) -> None:
        self._stopped.set()

    def _send(self, item: list[LdapEntry] | ContentSyncResult | BaseException) -> None:
        try:
            self._loop.call_soon_threadsafe(self._items.put_nowait, item)
        except RuntimeError as exc:  # the event loop is closed: nobody is listening any more
            raise _ReaderStopped from exc

    def put(self, page: list[LdapEntry]) -> None:
        """(reader thread) Hand over a page; wait while ``depth`` pages are unread."""
        while not self._room.acquire(timeout=_STOP_POLL):
            if self.stopped:
                raise _ReaderStopped
        if self.stopped:
            raise _ReaderStopped
        self._send(page)

    def finish(self, outcome: ContentSyncResult | BaseException) -> None:
        """(reader thread) The last item: the summary, or why the read failed."""
        if not self.stopped:
            try:
                self._send(outcome)
            except _ReaderStopped:
                pass

    def wake(self) -> None:
        """(event loop) End a socket read the reader is blocked in; the connection is lost."""
        conn = self.connection
        sock = getattr(conn, "socket", None) if conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    async def get(self) -> list[LdapEntry] | ContentSyncResult | BaseException:
        """(event loop) The next page, or the last item."""
        item = await self._items.get()
        if isinstance(item, list):
            self._room.release()
        return item


async def _join_reader(reader: threading.Thread, channel: _RefreshChannel) -> None:
    """Wait until a stopped reader thread has ended (and released its connection)."""
    if reader.is_alive():
        await asyncio.shield(asyncio.to_thread(reader.join, _STOP_GRACE))
    if reader.is_alive():  # blocked in a read from a server that sends nothing
        channel.wake()
        await asyncio.shield(asyncio.to_thread(reader.join))


def _refresh_responses(
    conn: Connection, query: SearchQuery, cookie: bytes | None
) -> Iterator[dict[str, Any]]:
    """Send the Sync Request search and yield its responses one at a time, searchResDone last.

    ldap3's own search gathers every response of a search into one list before it returns
    (100k entries: ~2 GB), so the request goes out through ldap3 and the socket is read here,
    one message at a time. Entries are parsed by :func:`~syncsvc.ldap.fastber.parse_search_entry`,
    anything else by the connection's own decoder.
    """
    strategy = conn.strategy
    with conn.connection_lock:
        request = search_operation(
            query.base, query.filter, SUBTREE, DEREF_NEVER,
            list(query.attributes) or [NO_ATTRIBUTES], 0, 0, False,
            conn.auto_escape, conn.auto_encode, None,
            validator=conn.server.custom_validator, check_names=False,
        )  # fmt: skip
        # syncprov answers protocolError when aliases are dereferenced; no paging either.
        message_id = strategy.send("searchRequest", request, [sync_request_control(cookie)])
    receive = _receiver(conn)
    try:
        while True:
            messages = receive()
            if not messages:
                raise LDAPSessionTerminatedByServerError("session terminated by server")
            for message in messages:
                response = _refresh_response(strategy, message, message_id)
                yield response
                if response["type"] == "searchResDone":
                    return
    finally:
        strategy._outstanding.pop(message_id, None)  # noqa: SLF001


def _refresh_response(strategy: Any, data: bytes, message_id: int) -> dict[str, Any]:
    parsed = parse_search_entry(data)
    if parsed is not None and parsed[0] == message_id:
        return _entry_response(strategy, parsed[1:], data)
    message = decode_message_fast(data)
    received = int(message["messageID"])
    if received == 0:  # unsolicited notification (RFC 4511 4.4)
        notice = strategy.decode_response_fast(message)
        if notice.get("responseName") == _NOTICE_OF_DISCONNECTION:
            raise LDAPSessionTerminatedByServerError("notice of disconnection")
        raise LDAPSocketReceiveError("unknown unsolicited notification from server")
    if received != message_id:
        raise LDAPSocketReceiveError("invalid messageId received")
    return strategy.decode_response_fast(message)  # type: ignore[no-any-return]


def _describe(result: Mapping[str, Any] | None) -> str:
    if not result:
        return "no response"
    message = (result.get("message") or "").strip()
    description = result.get("description") or str(result.get("result"))
    return f"{description} ({message})" if message else description


_SSL_REASON: Final = re.compile(r"\[SSL: [A-Z_]+\][^'\"]*")


def _root_message(exc: BaseException) -> str:
    """The useful part of an ldap3 message, which nests the reason in tuple reprs."""
    if isinstance(exc, TimeoutError):  # ldap3 mixes the socket's exception type into its own
        return "timed out: no answer within ldap.read_timeout / ldap.connect_timeout"
    text = str(exc)
    ssl_reason = _SSL_REASON.search(text)
    if ssl_reason:
        return ssl_reason.group(0).strip()
    return text.strip("()'\", ") or type(exc).__name__


def _close_quietly(conn: Connection) -> None:
    try:
        conn.unbind()
    except (LDAPException, OSError):
        pass
    try:
        if conn.socket is not None:
            conn.socket.close()
    except OSError:
        pass


def open_directory(settings: LdapSettings, flavor: Flavor) -> Directory:
    """An :class:`Ldap3Directory` for ldap(s):// URLs, an :class:`LdifDirectory` for ldif://.

    Raises:
        ConfigError: no URL, or ldif:// mixed with server URLs.
    """
    urls = settings.url
    if not urls:
        raise ConfigError(["ldap.url: at least one URL is required"])
    ldif = [u for u in urls if u.lower().startswith("ldif:")]
    if ldif:
        if len(urls) != 1:
            raise ConfigError(["ldap.url: an ldif:// URL cannot be combined with other URLs"])
        return LdifDirectory(ldif[0], flavor, page_size=settings.page_size)
    return Ldap3Directory(settings, flavor)

