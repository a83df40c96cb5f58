"""Bedrock's request authentication: SigV4 with botocore's signer (signing name ``bedrock``), or a
Bedrock API key as a bearer token."""

from __future__ import annotations

from providers.types import ProviderConfig

SIGNING_NAME = "bedrock"


def auth_headers(
    provider: ProviderConfig, *, url: str, body: bytes, headers: dict[str, str]
) -> dict[str, str]:
    """SigV4 headers (``Authorization``, ``X-Amz-Date``, ``X-Amz-Security-Token``) from
    botocore's signer, or a Bedrock API key as a bearer token; the body must be sent exactly
    as signed."""
    if provider.aws is not None:
        # botocore is imported on the first signed call: about 25 MB that an installation
        # without Bedrock never pays.
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        aws = provider.aws
        request = AWSRequest(method="POST", url=url, data=body, headers=headers)
        credentials = Credentials(aws.access_key_id, aws.secret_access_key, aws.session_token)
        SigV4Auth(credentials, SIGNING_NAME, provider.region).add_auth(request)
        return {name.lower(): str(value) for name, value in request.headers.items()}
    if provider.api_key:
        return {**headers, "authorization": f"Bearer {provider.api_key}"}
    return headers
