"""Bearer JWTs on the request path: the issuers' signing keys (JWKS, fetched with httpx
asynchronously and cached) and the verified tokens (cached until they expire, so a warm token
costs one dictionary lookup, as a key does). One ``TokenVerifier`` per event loop.

A key set is fetched when first needed, again when older than ``max_age``, and again when a
token names a key id the set lacks, at most once per ``refresh_interval`` per set. A fetch
that fails keeps the set known so far: tokens signed by known keys still verify, tokens of
unknown key ids are refused (fail closed) until the issuer answers."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from quotas.authentication.registry import KeyContext, KeyRegistry
from quotas.authentication.tokens import TokenRefused, inspect, token_context, verify

logger = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"
MAX_DOCUMENT_BYTES = 512 * 1024


@dataclass(slots=True)
class _KeySet:
    keys: dict[str | None, jwt.PyJWK] = field(default_factory=dict)
    jwks_url: str = ""
    fetched_at: float = float("-inf")
    attempted_at: float = float("-inf")
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(frozen=True, slots=True)
class _Verified:
    revision: int
    context: KeyContext
    expires_at: float


class TokenVerifier:
    def __init__(
        self,
        *,
        leeway: float,
        refresh_interval: float,
        max_age: float,
        timeout: float,
        max_tokens: int,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._leeway = leeway
        self._refresh_interval = refresh_interval
        self._max_age = max_age
        self._max_tokens = max_tokens
        self._client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._sets: dict[tuple[str, str], _KeySet] = {}
        self._verified: dict[str, _Verified] = {}
        self.fetches = 0  # key set and discovery requests made (for tests and metrics)

    async def aclose(self) -> None:
        await self._client.aclose()

    def cached(self, token: str, revision: int) -> KeyContext | None:
        """The warm path: a token verified under this configuration revision, not expired."""
        hit = self._verified.get(token)
        if hit is None or hit.revision != revision or time.time() >= hit.expires_at:
            return None
        return hit.context

    async def authenticate(self, token: str, registry: KeyRegistry, revision: int) -> KeyContext:
        """The token's context (TokenRefused naming the reason otherwise), cached until it expires."""
        context = self.cached(token, revision)
        if context is not None:
            return context
        inspected = inspect(token, registry)
        key = await self._signing_key(inspected.trust.issuer, inspected.trust.jwks_url, inspected.kid)
        if key is None:
            raise TokenRefused("unknown_key", "the issuer has no signing key with the token's key id.")
        claims = verify(token, inspected, key, leeway=self._leeway)
        context = token_context(claims, inspected.trust, registry)
        self._remember(token, _Verified(revision, context, context.expires_at or time.time()))
        return context

    def _remember(self, token: str, verified: _Verified) -> None:
        if self._max_tokens <= 0:
            return
        if len(self._verified) >= self._max_tokens:
            now = time.time()
            for stale in [t for t, v in self._verified.items() if v.expires_at <= now]:
                del self._verified[stale]
            while len(self._verified) >= self._max_tokens:  # the oldest entries go first
                del self._verified[next(iter(self._verified))]
        self._verified[token] = verified

    async def _signing_key(self, issuer: str, jwks_url: str, kid: str | None) -> jwt.PyJWK | None:
        keys = self._sets.setdefault((issuer, jwks_url), _KeySet())
        if not self._wanted(keys, kid):
            return self._pick(keys, kid)
        async with keys.lock:  # one fetch at a time per set; the others then use its result
            if self._wanted(keys, kid):
                await self._refresh(keys, issuer, jwks_url)
        return self._pick(keys, kid)

    def _wanted(self, keys: _KeySet, kid: str | None) -> bool:
        now = time.monotonic()
        if now - keys.attempted_at < self._refresh_interval:
            return False
        return self._pick(keys, kid) is None or now - keys.fetched_at >= self._max_age

    @staticmethod
    def _pick(keys: _KeySet, kid: str | None) -> jwt.PyJWK | None:
        if kid is None and len(keys.keys) == 1:
            return next(iter(keys.keys.values()))
        return keys.keys.get(kid) if kid is not None else None

    async def _refresh(self, keys: _KeySet, issuer: str, jwks_url: str) -> None:
        keys.attempted_at = time.monotonic()
        try:
            url = jwks_url or keys.jwks_url or await self._discover(issuer)
            keys.jwks_url = url
            document = await self._get_json(url)
            found = _parse_key_set(document)
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("signing keys of issuer %s not refreshed: %s", issuer, type(exc).__name__)
            return
        keys.keys, keys.fetched_at = found, time.monotonic()

    async def _discover(self, issuer: str) -> str:
        document = await self._get_json(issuer.rstrip("/") + DISCOVERY_PATH)
        uri = document.get("jwks_uri")
        if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
            raise ValueError("the discovery document has no jwks_uri")
        return uri

    async def _get_json(self, url: str) -> dict[str, Any]:
        self.fetches += 1
        response = await self._client.get(url, headers={"accept": "application/json"})
        response.raise_for_status()
        if len(response.content) > MAX_DOCUMENT_BYTES:
            raise ValueError("document too large")
        document = response.json()
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        return document


def _parse_key_set(document: dict[str, Any]) -> dict[str | None, jwt.PyJWK]:
    """The signing keys of a JWKS document by key id; keys PyJWT cannot use, or meant for
    encryption only, are skipped."""
    found: dict[str | None, jwt.PyJWK] = {}
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise ValueError("a JWKS document has a 'keys' list")
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError:
            continue
        kid = entry.get("kid")
        found[kid if isinstance(kid, str) else None] = key
    return found
