"""A local OpenID Connect provider for sign-in tests: a real aiohttp server on 127.0.0.1 (its own
thread and event loop) with a discovery document, an authorization endpoint that signs in
``identity`` at once (no login form) and redirects back with a code, a token endpoint (client
secret and PKCE S256 checked) returning an RS256 id token signed with a key made here, the JWKS
and a userinfo endpoint. What a relying party got wrong is collected in ``violations``."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.server import LoopbackServer


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    nonce: str
    code_challenge: str
    claims: dict[str, Any]


@dataclass
class Identity:
    """Who the provider signs in next: the id token's claims (``sub`` included) and the extra
    claims only the userinfo endpoint returns."""

    id_token_claims: dict[str, Any]
    userinfo_claims: dict[str, Any] = field(default_factory=dict)


class FakeOIDCProvider:
    def __init__(self, *, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)
        self.identity: Identity | None = None
        # Tampering, for refusal tests: claims merged over the id token's, another signing key.
        self.id_token_overrides: dict[str, Any] = {}
        self.signing_key: rsa.RSAPrivateKey | None = None
        self.issued_tokens: list[str] = []  # every id and access token handed out
        self.trailing_slash = False  # an issuer spelled with a trailing slash, as some providers do
        self.violations: list[str] = []
        self.token_requests = 0
        self.authorize_requests = 0
        self._codes: dict[str, Grant] = {}
        self._access: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._server = LoopbackServer("fake-oidc-provider")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    @property
    def issuer(self) -> str:
        return self.base_url + ("/" if self.trailing_slash else "")

    def start(self) -> FakeOIDCProvider:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/token", self._token)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_get("/userinfo", self._userinfo)
        self._server.start(app)
        return self

    def stop(self) -> None:
        self._server.stop()

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.signing_key or self.key, algorithm="RS256", headers={"kid": self.kid})

    def _violation(self, text: str) -> web.Response:
        with self._lock:
            self.violations.append(text)
        return web.json_response({"error": "invalid_request", "error_description": text}, status=400)

    async def _discovery(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.base_url}/authorize",
                "token_endpoint": f"{self.base_url}/token",
                "userinfo_endpoint": f"{self.base_url}/userinfo",
                "jwks_uri": f"{self.base_url}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        with self._lock:
            self.authorize_requests += 1
        if q.get("client_id") != self.client_id:
            return self._violation("unknown client_id")
        if q.get("response_type") != "code" or "openid" not in q.get("scope", "").split():
            return self._violation("response_type code and scope openid are required")
        if not q.get("state") or not q.get("nonce") or q.get("code_challenge_method") != "S256":
            return self._violation("state, nonce and an S256 code challenge are required")
        identity = self.identity
        if identity is None:
            return self._violation("no identity to sign in")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = Grant(
                client_id=q["client_id"],
                redirect_uri=q["redirect_uri"],
                nonce=q["nonce"],
                code_challenge=q["code_challenge"],
                claims={**identity.id_token_claims, "_userinfo": identity.userinfo_claims},
            )
        raise web.HTTPFound(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}")

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        with self._lock:
            self.token_requests += 1
            grant = self._codes.pop(str(form.get("code", "")), None)  # a code works once
        if grant is None:
            return web.json_response({"error": "invalid_grant"}, status=400)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return web.json_response({"error": "invalid_client"}, status=401)
        if form.get("grant_type") != "authorization_code" or form.get("redirect_uri") != grant.redirect_uri:
            return self._violation("grant_type or redirect_uri do not match the authorization request")
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != grant.code_challenge:
            return self._violation("the PKCE code verifier does not match")
        claims = dict(grant.claims)
        userinfo = claims.pop("_userinfo")
        now = int(time.time())
        id_token = self.sign(
            {
                "iss": self.issuer,
                "aud": self.client_id,
                "iat": now,
                "exp": now + 300,
                "nonce": grant.nonce,
                **claims,
                **self.id_token_overrides,
            }
        )
        access_token = secrets.token_urlsafe(24)
        with self._lock:
            self.issued_tokens += [id_token, access_token]
            self._access[access_token] = {"sub": claims["sub"], **userinfo}
        return web.json_response(
            {"access_token": access_token, "token_type": "Bearer", "expires_in": 300, "id_token": id_token}
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return web.json_response({"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}]})

    async def _userinfo(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        with self._lock:
            claims = self._access.get(header.removeprefix("Bearer "))
        if not header.startswith("Bearer ") or claims is None:
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.json_response(claims)
