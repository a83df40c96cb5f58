"""Bearer JWTs through a Daphne gateway: two tenants trusting two local identity providers
(one by its JWKS URL, one by OpenID discovery), the official OpenAI SDK holding a token instead
of a key, usage attributed to the token's subject, every refusal a 401 naming its reason in
the endpoint's error format, claims that narrow models and pick a per-subject rate tier, and a
key rotation at the issuer followed."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from accounting.models import UsageRecord
from quotas.models import TrustedIssuer
from quotas.revision import bump_revision
from tests.conftest import wait_for
from tests.e2e.conftest import MODEL, Proxy, error_body, records
from tests.fakes.identity_provider import IdentityProvider, forged, make_key, public_pem

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def idps() -> Iterator[tuple[IdentityProvider, IdentityProvider]]:
    acme, globex = IdentityProvider().start(), IdentityProvider(algorithm="ES256").start()
    yield acme, globex
    acme.stop()
    globex.stop()


def identity_yaml(acme: IdentityProvider, globex: IdentityProvider) -> str:
    return f"""
tiers:
  - name: per-user
    requests_per_minute: 2
tenants:
  - name: acme
    identity:
      issuer: {acme.issuer}
      audience: gateway
      jwks_url: {acme.jwks_url}
      claims: {{subject: email, models: models, tier: plan}}
  - name: globex
    identity:
      - issuer: {globex.issuer}
        audience: globex-gateway
"""


@pytest.fixture
def gateway(start_proxy, idps) -> Proxy:
    acme, globex = idps
    return start_proxy(extra_yaml=identity_yaml(acme, globex), GATEWAY_JWKS_REFRESH_SECONDS="0")


def sdk(proxy: Proxy, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{proxy.gateway.base_url}/v1", api_key=token, max_retries=0, timeout=30)


def ask(proxy: Proxy, token: str, model: str = MODEL) -> str | None:
    with sdk(proxy, token) as client:
        reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello"}])
    return reply.choices[0].message.content


def test_tokens_of_two_tenants_are_served_and_attributed_to_their_subject(gateway, idps):
    acme, globex = idps
    alice = acme.token(subject="u-1", email="alice@acme.test")
    bob = globex.token(audience="globex-gateway", subject="bob")

    assert ask(gateway, alice) == "Hello!"
    assert ask(gateway, bob) == "Hello!"
    assert ask(gateway, alice) == "Hello!"  # the cached verification

    first, second, third = records(3)
    assert [(r.tenant_name, r.subject, r.key_id, r.key_prefix, r.status) for r in (first, second, third)] == [
        ("acme", "alice@acme.test", None, "jwt", 200),
        ("globex", "bob", None, "jwt", 200),
        ("acme", "alice@acme.test", None, "jwt", 200),
    ]
    assert {r.tenant_id for r in (first, third)} == {gateway.key.tenant.pk}
    assert [r.headers["authorization"] for r in gateway.upstream.requests] == [
        f"Bearer {gateway.upstream_key}"
    ] * 3
    assert acme.requests == ["/realms/test/jwks"]  # by its URL, once
    assert globex.requests == ["/realms/test/.well-known/openid-configuration", "/realms/test/jwks"]
    # A key of the same tenant still works and records no subject.
    assert gateway.client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "k"}])
    keyed = records(4)[3]
    assert (keyed.subject, keyed.key_id) == (None, gateway.key.key_id)

    # /v1/usage with a token: the subject's month, the tenant's quotas.
    usage = httpx.get(f"{gateway.gateway.base_url}/v1/usage", headers={"Authorization": f"Bearer {alice}"})
    assert usage.status_code == 200
    body = usage.json()
    assert (body["subject"], body["tenant"], body["key_prefix"]) == ("alice@acme.test", "acme", "jwt")
    assert body["month"]["requests"] == 2
    assert gateway.http.get("/v1/usage").json()["month"]["requests"] == 1  # the key's own


def test_an_issuer_trusted_while_the_gateway_runs_works_at_once(gateway, idps):
    third = IdentityProvider().start()
    try:
        token = third.token(audience="late", subject="newcomer")
        with httpx.Client(base_url=gateway.gateway.base_url) as http:
            before = http.post(
                "/v1/chat/completions", json=gateway.chat_body(), headers={"Authorization": f"Bearer {token}"}
            )
            assert before.status_code == 401
            assert before.json()["error"]["message"].startswith(
                "The bearer token was refused (unknown_issuer)"
            )
            TrustedIssuer.objects.create(tenant=gateway.key.tenant, issuer=third.issuer, audience="late")
            bump_revision()
            after = http.post(
                "/v1/chat/completions", json=gateway.chat_body(), headers={"Authorization": f"Bearer {token}"}
            )
        assert after.status_code == 200
        assert [(r.tenant_name, r.subject) for r in records(1)] == [("acme", "newcomer")]
    finally:
        third.stop()


def test_refused_tokens_get_a_401_naming_the_reason_and_nothing_happens(gateway, idps):
    acme, globex = idps
    signer = acme.keys[0]
    head, body, signature = acme.token(email="a@acme.test").split(".")
    other_body = acme.token(email="root@acme.test").split(".")[1]
    claims = {"iss": acme.issuer, "aud": "gateway", "email": "root@acme.test", "exp": 2_000_000_000}
    cases = {
        acme.token(email="a@acme.test", lifetime=-120): ("expired", "the token has expired."),
        acme.token(email="a@acme.test", audience="elsewhere"): (
            "wrong_audience",
            "the token is not meant for this gateway.",
        ),
        acme.token(email="a@acme.test", issuer="http://127.0.0.1:9/nobody"): (
            "unknown_issuer",
            "no tenant trusts the token's issuer.",
        ),
        acme.token(email="a@acme.test", key=make_key(kid="not-published")): (
            "unknown_key",
            "the issuer has no signing key with the token's key id.",
        ),
        acme.token(email="a@acme.test", key=make_key(kid=signer.kid)): (
            "bad_signature",
            "the signature does not verify.",
        ),
        f"{head}.{other_body}.{signature}": ("bad_signature", "the signature does not verify."),
        forged({"alg": "none"}, claims, None): ("bad_signature", "the algorithm 'none' is not accepted."),
        forged({"alg": "HS256", "kid": signer.kid}, claims, public_pem(signer)): (
            "bad_signature",
            "the algorithm 'HS256' is not accepted.",
        ),
    }
    for token, (reason, detail) in cases.items():
        response = httpx.post(
            f"{gateway.gateway.base_url}/v1/chat/completions",
            json=gateway.chat_body(),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 401, reason
        assert response.json() == error_body(
            f"The bearer token was refused ({reason}): {detail}",
            "invalid_request_error",
            code="invalid_token",
        )
        assert token not in response.text and body not in response.text

    expired = acme.token(email="a@acme.test", lifetime=-120)
    with sdk(gateway, expired) as client, pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    assert refused.value.code == "invalid_token"

    anthropic_style = httpx.post(
        f"{gateway.gateway.base_url}/v1/messages",
        json={"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]},
        headers={
            "Authorization": f"Bearer {globex.token(audience='nope')}",
            "anthropic-version": "2023-06-01",
        },
    )
    assert anthropic_style.status_code == 401
    assert anthropic_style.json() == {
        "type": "error",
        "error": {
            "type": "authentication_error",
            "message": (
                "The bearer token was refused (wrong_audience): the token is not meant for this gateway."
            ),
        },
    }

    assert gateway.upstream.requests == []
    assert ask(gateway, acme.token(email="ok@acme.test")) == "Hello!"  # then one that works
    [record] = records(1)
    assert record.subject == "ok@acme.test"
    log = gateway.gateway.log()
    assert all(token not in log for token in cases)


def test_claims_narrow_the_models_and_give_each_subject_its_tier(gateway, idps):
    acme, _ = idps
    narrowed = acme.token(email="n@acme.test", models=["claude-*"])
    with sdk(gateway, narrowed) as client, pytest.raises(openai.NotFoundError) as hidden:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    assert hidden.value.code == "model_not_found"

    carol = acme.token(email="carol@acme.test", plan="per-user")
    dave = acme.token(email="dave@acme.test", plan="per-user")
    assert [ask(gateway, carol), ask(gateway, carol)] == ["Hello!", "Hello!"]
    with sdk(gateway, carol) as client, pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    assert ask(gateway, dave) == "Hello!"  # another subject has its own counters
    assert ask(gateway, acme.token(email="erin@acme.test")) == "Hello!"  # no tier claim: no tier
    wait_for(lambda: UsageRecord.objects.count() == 4)
    assert sorted(UsageRecord.objects.values_list("subject", flat=True)) == [
        "carol@acme.test",
        "carol@acme.test",
        "dave@acme.test",
        "erin@acme.test",
    ]
    assert len(gateway.upstream.requests) == 4


def test_a_key_rotation_at_the_issuer_is_followed(gateway, idps):
    acme, _ = idps
    assert ask(gateway, acme.token(email="a@acme.test")) == "Hello!"
    old = acme.keys[0]
    new = acme.rotate("EdDSA")
    acme.retire(old.kid)

    assert ask(gateway, acme.token(email="b@acme.test", key=new)) == "Hello!"
    assert acme.requests == ["/realms/test/jwks", "/realms/test/jwks"]
    assert [r.subject for r in records(2)] == ["a@acme.test", "b@acme.test"]
