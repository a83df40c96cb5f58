"""Client tokens: a JWT from a trusted identity provider, presented as
``Authorization: Bearer <JWT>`` instead of a gateway key (docs/security.md).

``inspect`` reads a token's header and claims without trusting them, to pick the tenant's
``IssuerTrust`` (issuer and audience) and the signing key id; ``verify`` checks the signature
with the issuer's key (fetched by the edge, ``gateway_site.runtime.jwks``) and ``iss``, ``aud``,
``exp`` and ``nbf``, and ``token_context`` makes the request's context: the tenant of the
issuer, the subject, models narrowed and a rate tier picked by claims.

Only asymmetric algorithms are accepted (RS256, ES256, EdDSA), and only the one that fits the
key's type: never ``none``, never an HMAC algorithm keyed with a public key. No message ever
echoes the token."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from typing import Any

import jwt

from quotas.access import AccessPolicy, compile_patterns
from quotas.authentication.registry import IssuerTrust, KeyContext, KeyRegistry
from quotas.errors import AuthenticationError

# The algorithm each JWK key type signs with.
ALGORITHM_OF_KEY_TYPE = {"RSA": "RS256", "EC": "ES256", "OKP": "EdDSA"}
ALGORITHMS = frozenset(ALGORITHM_OF_KEY_TYPE.values())
MAX_TOKEN_LENGTH = 8192
MAX_SUBJECT_LENGTH = 255
_NOTHING = (re.compile(r"(?!)"),)  # a models claim with no pattern allows no model


class TokenRefused(AuthenticationError):
    """A token that does not authenticate; ``reason`` is its class (expired, wrong_audience,
    unknown_issuer, bad_signature, unknown_key, not_yet_valid, malformed)."""

    code = "invalid_token"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"The bearer token was refused ({reason}): {detail}")
        self.reason = reason


class UnknownIssuer(TokenRefused):
    """No tenant trusts the token's issuer (maybe trusted after the snapshot was taken)."""

    def __init__(self) -> None:
        super().__init__("unknown_issuer", "no tenant trusts the token's issuer.")


def looks_like_jwt(presented: str) -> bool:
    """A compact JWS (three dot-separated parts) that is not a gateway key."""
    return presented.count(".") == 2 and not presented.startswith("sk-")


@dataclass(frozen=True, slots=True)
class Inspected:
    trust: IssuerTrust
    algorithm: str
    kid: str | None


def inspect(token: str, registry: KeyRegistry) -> Inspected:
    """The trust the token claims to belong to and its signing key id, read without verifying
    anything; TokenRefused for a token no trust can accept whatever its signature."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenRefused("malformed", "the token is not a well-formed JWT.") from None
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise TokenRefused("bad_signature", f"the algorithm {str(algorithm)[:20]!r} is not accepted.")
    issuer = claims.get("iss")
    trusts = registry.issuers.get(issuer) if isinstance(issuer, str) else None
    if not trusts:
        raise UnknownIssuer()
    audiences = claims.get("aud")
    audiences = [audiences] if isinstance(audiences, str) else audiences
    if not isinstance(audiences, list):
        raise TokenRefused("wrong_audience", "the token has no audience.")
    trust = next((t for t in trusts if t.audience in audiences), None)
    if trust is None:
        raise TokenRefused("wrong_audience", "the token is not meant for this gateway.")
    kid = header.get("kid")
    return Inspected(trust=trust, algorithm=algorithm, kid=kid if isinstance(kid, str) else None)


def verify(token: str, inspected: Inspected, key: jwt.PyJWK, *, leeway: float) -> dict[str, Any]:
    """The token's claims once its signature (by ``key``), issuer, audience and validity
    period are checked; TokenRefused naming the reason otherwise."""
    trust = inspected.trust
    # PyJWK's algorithm: the JWK's "alg", else the one of its type (and curve).
    if (
        ALGORITHM_OF_KEY_TYPE.get(key.key_type or "") != inspected.algorithm
        or key.algorithm_name != inspected.algorithm
    ):
        raise TokenRefused("bad_signature", "the algorithm does not fit the issuer's key.")
    try:
        return jwt.decode(
            token,
            key=key.key,
            algorithms=[inspected.algorithm],
            audience=trust.audience,
            issuer=trust.issuer,
            leeway=leeway,
            options={"require": ["exp", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenRefused("expired", "the token has expired.") from None
    except jwt.ImmatureSignatureError:
        raise TokenRefused("not_yet_valid", "the token is not valid yet.") from None
    except jwt.InvalidAudienceError:
        raise TokenRefused("wrong_audience", "the token is not meant for this gateway.") from None
    except jwt.InvalidIssuerError:
        raise TokenRefused("unknown_issuer", "no tenant trusts the token's issuer.") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenRefused("malformed", f"the token has no '{exc.claim}' claim.") from None
    except jwt.InvalidSignatureError:
        raise TokenRefused("bad_signature", "the signature does not verify.") from None
    except jwt.PyJWTError:
        raise TokenRefused("malformed", "the token could not be verified.") from None


def _patterns(value: object) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def token_context(claims: dict[str, Any], trust: IssuerTrust, registry: KeyRegistry) -> KeyContext:
    """The verified token's context: its tenant's, with the subject, the models its claim
    allows (within the tenant's rules) and the subject's own rate tier (the claim's, else the
    trust's), counted under the subject (``holder``)."""
    subject = claims.get(trust.subject_claim)
    if not isinstance(subject, (str, int)) or isinstance(subject, bool) or str(subject) == "":
        raise TokenRefused("malformed", f"the token has no '{trust.subject_claim[:100]}' claim.")
    subject = str(subject)[:MAX_SUBJECT_LENGTH]
    base = trust.tenant
    policy = base.policy
    if trust.models_claim and trust.models_claim in claims:
        patterns = _patterns(claims[trust.models_claim])
        narrowed = compile_patterns(patterns) if patterns else ()
        policy = AccessPolicy(
            tenant_allow=policy.tenant_allow, tenant_deny=policy.tenant_deny, key_allow=narrowed or _NOTHING
        )
    tier = trust.tier
    if trust.tier_claim:
        named = claims.get(trust.tier_claim)
        if isinstance(named, str) and named in registry.tiers_by_name:
            tier = registry.tiers_by_name[named]
    digest = hashlib.sha256(f"{trust.id}\x00{subject}".encode()).hexdigest()[:24]
    limits = dataclasses.replace(base.limits, key_tier=tier, holder=f"s{digest}")
    expires = claims.get("exp")
    return dataclasses.replace(
        base,
        key_name=subject,
        subject=subject,
        policy=policy,
        limits=limits,
        expires_at=float(expires) if isinstance(expires, (int, float)) else None,
    )
