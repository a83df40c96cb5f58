"""Upstream errors as the client receives them: every field of an ``UpstreamError`` and of a
mid-stream error event passes through the PII redactor extended with the configured provider
credentials; the credentials are collected from the catalog of every provider kind."""

from __future__ import annotations

import orjson

from gateway_site.api.responses import provider_secrets, relayed_error_object, relayed_error_payload
from gateway_site.observability.redaction import Redactor
from providers.errors import UpstreamHTTPError
from providers.types import AwsCredentials, Catalog, DeploymentConfig, ModelRoute, ProviderConfig

KEY = "opk7Q2mZt9RxLw4VbN8c"
REDACTOR = Redactor(b"k").with_secrets([KEY])
HIDDEN = REDACTOR.placeholder("PROVIDER_KEY", KEY)


def test_every_field_of_an_upstream_error_is_redacted() -> None:
    error = UpstreamHTTPError(f"bad {KEY}", status=400, error_type=f"t {KEY}", code=f"c{KEY}", param=KEY)
    assert relayed_error_object(error, redactor=REDACTOR) == {
        "error": {"message": f"bad {HIDDEN}", "type": f"t {HIDDEN}", "param": HIDDEN, "code": f"c{HIDDEN}"}
    }


def test_personal_data_in_an_upstream_message_is_redacted_too() -> None:
    error = UpstreamHTTPError("user jo@ex.io refused", status=400)
    body = relayed_error_object(error, redactor=REDACTOR)
    assert body["error"] == {
        "message": f"user {REDACTOR.placeholder('EMAIL', 'jo@ex.io')} refused",
        "type": "upstream_error",
        "param": None,
        "code": "upstream_error",
    }


def test_a_mid_stream_error_event_keeps_only_the_four_fields_each_redacted() -> None:
    payload = orjson.dumps(
        {"error": {"message": KEY, "type": None, "param": {"k": KEY}, "code": 429, "echo": KEY}, "x": KEY}
    )
    assert orjson.loads(relayed_error_payload(payload, redactor=REDACTOR)) == {
        "error": {"message": HIDDEN, "type": "upstream_error", "param": None, "code": "429"}
    }


def test_a_mid_stream_error_event_that_is_not_json_gets_a_generic_message() -> None:
    assert orjson.loads(relayed_error_payload(KEY.encode(), redactor=REDACTOR)) == {
        "error": {
            "message": "The upstream provider failed mid-stream.",
            "type": "upstream_error",
            "param": None,
            "code": None,
        }
    }


def test_provider_secrets_are_every_configured_credential() -> None:
    keyed = ProviderConfig(name="a", kind="anthropic", base_url="http://a", api_key="ant-key-1")
    aws = AwsCredentials("AKIDEXAMPLE1", "aws-secret-1", "aws-token-1")
    signed = ProviderConfig(name="b", kind="bedrock", base_url="http://b", aws=aws)
    keyless = ProviderConfig(name="m", kind="mock", base_url="")
    routes = {
        "one": ModelRoute(
            name="one",
            created=0,
            owned_by="a",
            deployments=(
                DeploymentConfig(id=1, provider=keyed, upstream_model="x"),
                DeploymentConfig(id=2, provider=signed, upstream_model="y"),
            ),
        ),
        "two": ModelRoute(
            name="two",
            created=0,
            owned_by="m",
            deployments=(DeploymentConfig(id=3, provider=keyless, upstream_model="z"),),
        ),
    }
    assert provider_secrets(Catalog(models=routes)) == {
        "ant-key-1",
        "AKIDEXAMPLE1",
        "aws-secret-1",
        "aws-token-1",
    }
