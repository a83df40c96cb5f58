"""TokenVerifier against a local identity provider (a real HTTP server on 127.0.0.1 serving a
discovery document and a JWKS, keys made with cryptography) and trusts loaded from the
database: what verifies, each refusal's reason, the key set's fetches (discovery, refresh on an
unknown key id at most once per interval, an unreachable issuer) and the verified-token cache."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator

import pytest

from gateway_site.runtime.jwks import TokenVerifier
from quotas.authentication.registry import KeyRegistry, load_registry
from quotas.authentication.tokens import TokenRefused, looks_like_jwt
from quotas.models import RateTier, Tenant, TrustedIssuer
from tests.fakes.identity_provider import IdentityProvider, forged, make_key, public_pem

pytestmark = pytest.mark.django_db


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider().start()
    yield provider
    provider.stop()


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as loop:
        yield loop


def trust(
    idp: IdentityProvider, *, tenant: str = "acme", jwks_url: str | None = None, **fields
) -> TrustedIssuer:
    owner, _ = Tenant.objects.get_or_create(name=tenant)
    return TrustedIssuer.objects.create(
        tenant=owner,
        issuer=idp.issuer,
        audience=fields.pop("audience", "gateway"),
        jwks_url=idp.jwks_url if jwks_url is None else jwks_url,
        **fields,
    )


def verifier(*, refresh: float = 3600, max_age: float = 3600, max_tokens: int = 100) -> TokenVerifier:
    return TokenVerifier(
        leeway=30, refresh_interval=refresh, max_age=max_age, timeout=2, max_tokens=max_tokens
    )


def refusal(runner: asyncio.Runner, tokens: TokenVerifier, token: str, registry: KeyRegistry) -> str:
    with pytest.raises(TokenRefused) as excinfo:
        runner.run(tokens.authenticate(token, registry, 1))
    error = excinfo.value
    assert (error.status, error.error_type, error.code) == (401, "invalid_request_error", "invalid_token")
    assert token not in error.message and token.split(".")[1] not in error.message
    return error.reason


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_valid_tokens_of_each_algorithm_give_the_tenant_and_subject(idp, runner):
    row = trust(idp)
    ec_key, ed_key = idp.rotate("ES256"), idp.rotate("EdDSA")
    registry, tokens = load_registry(), verifier()

    for key, subject in ((ec_key, "ec-user"), (ed_key, "ed-user"), (idp.keys[-1], "rsa-user")):
        token = idp.token(subject=subject, key=key)
        context = runner.run(tokens.authenticate(token, registry, 1))
        assert (context.tenant_id, context.tenant_name, context.key_id, context.key_prefix) == (
            row.tenant_id,
            "acme",
            0,
            "jwt",
        )
        assert (context.subject, context.key_name) == (subject, subject)
        assert context.limits.holder.startswith("s") and len(context.limits.holder) == 25
        exp = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["exp"]
        assert context.expires_at == float(exp)
    assert idp.requests == ["/realms/test/jwks"]  # one fetch served all three keys
    assert [k.algorithm for k in idp.keys] == ["EdDSA", "ES256", "RS256"]


def test_a_verified_token_is_cached_per_revision(idp, runner):
    trust(idp)
    registry, tokens = load_registry(), verifier()
    token = idp.token()

    first = runner.run(tokens.authenticate(token, registry, 1))
    assert tokens.cached(token, 1) is first
    assert runner.run(tokens.authenticate(token, registry, 1)) is first
    assert tokens.cached(token, 2) is None  # a configuration change verifies it again
    again = runner.run(tokens.authenticate(token, registry, 2))
    assert again == first and again is not first
    assert tokens.fetches == 1


def test_the_cache_is_bounded(idp, runner):
    trust(idp)
    registry, tokens = load_registry(), verifier(max_tokens=2)
    first, second, third = (idp.token(subject=f"user-{n}") for n in range(3))
    for token in (first, second, third):
        runner.run(tokens.authenticate(token, registry, 1))
    assert tokens.cached(first, 1) is None  # the oldest went
    assert tokens.cached(second, 1) is not None and tokens.cached(third, 1) is not None


def test_refusals_name_their_reason(idp, runner):
    trust(idp)
    registry, tokens = load_registry(), verifier()
    signer = idp.keys[0]
    now = int(time.time())
    claims = {"iss": idp.issuer, "aud": "gateway", "sub": "mallory", "exp": now + 600}
    good = idp.token()
    head, body, signature = good.split(".")
    tampered_claims = {**json.loads(base64.urlsafe_b64decode(body + "==")), "sub": "admin"}

    cases = {
        "expired": idp.token(lifetime=-120),  # past the 30 s leeway
        "not_yet_valid": idp.token(nbf=now + 600),
        "wrong_audience": idp.token(audience="another-gateway"),
        "unknown_issuer": idp.token(issuer="http://127.0.0.1:1/realms/other"),
        "alg_none": forged({"alg": "none", "typ": "JWT"}, claims, None),
        "hs256_with_public_key": forged({"alg": "HS256", "kid": signer.kid}, claims, public_pem(signer)),
        "unknown_key": idp.token(key=make_key("RS256", kid="never-published")),
        "wrong_key_same_kid": idp.token(key=make_key("RS256", kid=signer.kid)),
        "tampered": f"{head}.{_b64(json.dumps(tampered_claims).encode())}.{signature}",
        "no_expiry": idp.token(exp=None),
        "malformed": "abc.def.ghi",
    }
    reasons = {name: refusal(runner, tokens, token, registry) for name, token in cases.items()}

    assert reasons == {
        "expired": "expired",
        "not_yet_valid": "not_yet_valid",
        "wrong_audience": "wrong_audience",
        "unknown_issuer": "unknown_issuer",
        "alg_none": "bad_signature",
        "hs256_with_public_key": "bad_signature",
        "unknown_key": "unknown_key",
        "wrong_key_same_kid": "bad_signature",
        "tampered": "bad_signature",
        "no_expiry": "malformed",
        "malformed": "malformed",
    }
    assert tokens.cached(good, 1) is None  # nothing refused was cached, nor anything else
    assert runner.run(tokens.authenticate(good, registry, 1)).subject == "alice@example.com"


def test_an_algorithm_that_does_not_fit_the_key_is_refused(idp, runner):
    """An ES256 header over a kid of an RSA key: refused before any signature check."""
    trust(idp)
    registry, tokens = load_registry(), verifier()
    rsa_kid = idp.keys[0].kid
    ec_key = make_key("ES256", kid=rsa_kid)
    assert refusal(runner, tokens, idp.token(key=ec_key), registry) == "bad_signature"


def test_unknown_key_ids_refresh_the_set_at_most_once_per_interval(idp, runner):
    trust(idp)
    registry = load_registry()
    tokens = verifier(refresh=3600)
    runner.run(tokens.authenticate(idp.token(), registry, 1))
    rotated = idp.rotate()
    fresh = idp.token(key=rotated)

    assert refusal(runner, tokens, fresh, registry) == "unknown_key"  # fetched less than 3600 s ago
    assert refusal(runner, tokens, idp.token(key=rotated, subject="bob"), registry) == "unknown_key"
    assert tokens.fetches == 1 and idp.requests == ["/realms/test/jwks"]

    eager = verifier(refresh=0)  # the interval has passed at every request
    runner.run(eager.authenticate(idp.token(), registry, 1))
    idp.retire(idp.keys[1].kid)
    newer = idp.rotate("ES256")
    assert (
        runner.run(eager.authenticate(idp.token(key=newer, subject="carol"), registry, 1)).subject == "carol"
    )
    assert eager.fetches == 2
    assert refusal(runner, eager, idp.token(key=make_key(kid="ghost")), registry) == "unknown_key"
    assert eager.fetches == 3


def test_discovery_finds_the_key_set(idp, runner):
    trust(idp, jwks_url="")
    registry, tokens = load_registry(), verifier()
    assert runner.run(tokens.authenticate(idp.token(), registry, 1)).tenant_name == "acme"
    assert idp.requests == ["/realms/test/.well-known/openid-configuration", "/realms/test/jwks"]


def test_an_unreachable_issuer_fails_closed_for_unknown_keys_only(idp, runner):
    trust(idp)
    registry = load_registry()
    tokens = verifier(refresh=0, max_age=0)  # every request would refresh the set
    runner.run(tokens.authenticate(idp.token(), registry, 1))
    idp.down = True

    # A key already known still verifies new tokens; the failed refresh keeps the set.
    assert runner.run(tokens.authenticate(idp.token(subject="bob"), registry, 1)).subject == "bob"
    assert refusal(runner, tokens, idp.token(key=idp.rotate()), registry) == "unknown_key"
    assert tokens.fetches == 3 and idp.requests == ["/realms/test/jwks"] * 3

    cold = verifier()
    assert refusal(runner, cold, idp.token(key=idp.keys[-1]), registry) == "unknown_key"


def test_claims_narrow_models_and_pick_the_subjects_tier(idp, runner):
    gold = RateTier.objects.create(name="gold", requests_per_minute=100)
    basic = RateTier.objects.create(name="basic", requests_per_minute=2)
    trust(idp, models_claim="models", tier_claim="plan", tier=basic)
    registry, tokens = load_registry(), verifier()
    from quotas.access import model_allowed

    narrowed = runner.run(tokens.authenticate(idp.token(models=["gpt-4o*"], plan="gold"), registry, 1))
    assert model_allowed(narrowed.policy, "gpt-4o-mini") and not model_allowed(narrowed.policy, "claude-x")
    assert narrowed.limits.key_tier is not None and narrowed.limits.key_tier.name == gold.name

    spaced = runner.run(tokens.authenticate(idp.token(subject="s2", models="claude-* o1"), registry, 1))
    assert model_allowed(spaced.policy, "o1") and not model_allowed(spaced.policy, "gpt-4o")
    assert spaced.limits.key_tier is not None and spaced.limits.key_tier.name == "basic"

    nothing = runner.run(tokens.authenticate(idp.token(subject="s3", models=[], plan="nope"), registry, 1))
    assert not model_allowed(nothing.policy, "gpt-4o-mini")
    assert nothing.limits.key_tier is not None and nothing.limits.key_tier.name == "basic"

    unclaimed = runner.run(tokens.authenticate(idp.token(subject="s4"), registry, 1))
    assert model_allowed(unclaimed.policy, "anything")
    assert len({narrowed.limits.holder, spaced.limits.holder, nothing.limits.holder}) == 3


def test_only_compact_tokens_that_are_not_keys_look_like_jwts():
    assert looks_like_jwt("a.b.c")
    assert not looks_like_jwt("sk-gw-abc.def.ghi")
    assert not looks_like_jwt("sk-gw-plainkey")
    assert not looks_like_jwt("a.b.c.d.e")
