"""A local OpenID identity provider for the tests: discovery document and JWKS on 127.0.0.1,
signing keys made with cryptography (RSA, EC P-256, Ed25519), and tokens signed by them. Keys
can be added and retired (rotation); ``down`` makes every request fail with a 503."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from tests.fakes.server import LoopbackServer

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass
class IssuerKey:
    kid: str
    algorithm: str
    private: SigningKey

    def public_jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        if self.algorithm == "RS256":
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        elif self.algorithm == "ES256":
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.algorithm}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, object], claims: dict[str, object], secret: bytes | None) -> str:
    """A token signed by hand, as an attacker would: HMAC-SHA256 under ``secret`` (say, the
    issuer's public key in PEM), or unsigned (``alg: none``) when ``secret`` is None."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if secret is None:
        return signing_input + "."
    return signing_input + "." + _b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


def public_pem(key: IssuerKey) -> bytes:
    return key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def make_key(algorithm: str = "RS256", kid: str | None = None) -> IssuerKey:
    private: SigningKey
    if algorithm == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif algorithm == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    return IssuerKey(kid=kid or uuid.uuid4().hex[:12], algorithm=algorithm, private=private)


class IdentityProvider:
    def __init__(self, *, algorithm: str = "RS256") -> None:
        self.keys: list[IssuerKey] = [make_key(algorithm)]
        self.requests: list[str] = []  # paths asked, in order
        self.down = False
        self._server = LoopbackServer("fake-identity-provider")

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self._server.port}/realms/test"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks"

    def start(self) -> IdentityProvider:
        app = web.Application()
        app.router.add_get("/realms/test/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/realms/test/jwks", self._jwks)
        self._server.start(app)
        return self

    def stop(self) -> None:
        self._server.stop()

    def rotate(self, algorithm: str = "RS256") -> IssuerKey:
        """A new signing key, published first in the set; the old ones stay until retired."""
        key = make_key(algorithm)
        self.keys.insert(0, key)
        return key

    def retire(self, kid: str) -> None:
        self.keys = [k for k in self.keys if k.kid != kid]

    def token(
        self,
        *,
        audience: str | list[str] = "gateway",
        subject: str = "alice@example.com",
        lifetime: float = 600,
        issuer: str | None = None,
        key: IssuerKey | None = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        signer = key or self.keys[0]
        now = int(time.time())
        payload = {
            "iss": issuer or self.issuer,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + int(lifetime),
            **claims,
        }
        payload = {name: value for name, value in payload.items() if value is not None}  # None: left out
        return jwt.encode(
            payload,
            signer.private,
            algorithm=signer.algorithm,
            headers={"kid": signer.kid, **(headers or {})},
        )

    async def _discovery(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        if self.down:
            return web.json_response({"error": "down"}, status=503)
        return web.json_response(
            {
                "issuer": self.issuer,
                "jwks_uri": self.jwks_url,
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        if self.down:
            return web.json_response({"error": "down"}, status=503)
        return web.json_response({"keys": [k.public_jwk() for k in self.keys]})
