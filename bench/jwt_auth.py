"""Per-request cost of authentication (``python -m bench.jwt_auth``), in process, no I/O:

- a gateway key: ``KeyRegistry.authenticate`` (SHA-256 of the key, one dictionary lookup);
- a bearer JWT already verified: ``TokenVerifier.authenticate`` served from its cache;
- a bearer JWT seen for the first time, its issuer's keys already fetched: header and claims
  read, signature and claims checked, the context built (RS256, ES256 and EdDSA).

Each figure is the median of ``--rounds`` rounds of ``--count`` calls, in microseconds."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")
    import django

    django.setup()


def _drive(work: Coroutine[Any, Any, object]) -> object:
    """Run a coroutine that never suspends (no fetch: the keys are known) without a loop, so
    the figure is the authentication's own cost, as awaited inline on the request path."""
    try:
        work.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the coroutine suspended")


def _first_verify(verifier: Any, tokens: Iterator[str], registry: Any) -> Callable[[], object]:
    return lambda: _drive(verifier.authenticate(next(tokens), registry, 1))


def _median_us(call: Callable[[], object], *, count: int, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(count):
            call()
        samples.append((time.perf_counter() - started) / count * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()
    _setup_django()

    import jwt

    from gateway_site.runtime.jwks import TokenVerifier, _KeySet
    from quotas.access import AccessPolicy
    from quotas.authentication.keys import generate_key
    from quotas.authentication.registry import IssuerTrust, KeyContext, KeyRegistry
    from tests.fakes.identity_provider import IdentityProvider, make_key

    base = KeyContext(
        key_id=0,
        key_prefix="jwt",
        key_name="",
        tenant_id=1,
        tenant_name="acme",
        expires_at=None,
        revoked=False,
        policy=AccessPolicy(tenant_allow=(), tenant_deny=(), key_allow=()),
    )
    idp = IdentityProvider()  # not started: its keys sign, the verifier is handed them
    idp.keys = [make_key(algorithm) for algorithm in ("RS256", "ES256", "EdDSA")]
    issuer = "https://id.example.test"
    trust = IssuerTrust(
        id=1,
        issuer=issuer,
        audience="gateway",
        jwks_url="https://id.example.test/jwks",
        subject_claim="sub",
        models_claim="",
        tier_claim="",
        tier=None,
        tenant=base,
    )
    key = generate_key()
    registry = KeyRegistry(by_hash={key.key_hash: base}, issuers={issuer: (trust,)})
    verifier = TokenVerifier(leeway=30, refresh_interval=60, max_age=3600, timeout=5, max_tokens=10_000_000)
    verifier._sets[(issuer, trust.jwks_url)] = _KeySet(
        keys={k.kid: jwt.PyJWK(k.public_jwk()) for k in idp.keys}, fetched_at=time.monotonic()
    )
    count, rounds = options.count, options.rounds

    rows = [("gateway key", _median_us(lambda: registry.authenticate(key.raw), count=count, rounds=rounds))]
    warm = idp.token(issuer=issuer, key=idp.keys[0])
    _drive(verifier.authenticate(warm, registry, 1))
    rows.append(
        (
            "JWT, cached",
            _median_us(lambda: _drive(verifier.authenticate(warm, registry, 1)), count=count, rounds=rounds),
        )
    )
    rows.append(
        (
            "JWT, cached (lookup alone)",
            _median_us(lambda: verifier.cached(warm, 1), count=count, rounds=rounds),
        )
    )
    for signer in idp.keys:
        fresh = [idp.token(issuer=issuer, key=signer, subject=f"user-{n}") for n in range(count * rounds)]
        cost = _median_us(_first_verify(verifier, iter(fresh), registry), count=count, rounds=rounds)
        rows.append((f"JWT, first verify ({signer.algorithm})", cost))
    print(f"{'path':<32} {'µs per request':>15}")
    for name, micros in rows:
        print(f"{name:<32} {micros:>15.1f}")


if __name__ == "__main__":
    main()
