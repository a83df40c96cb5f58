"""Every provider kind the gateway serves, one record each, and the lookups derived from them:
the admin's choices, ``applyconfig``'s kind validation, the settings check and defaults, the
chat adapter and the embedder of a deployment, the token rules pricing applies and the
telemetry name all read ``KINDS``. Adding a kind is adding its record here (see
docs/adding-a-provider-kind.md). No Django here."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from providers.errors import UnsupportedRequest
from providers.kinds.record import ProviderKind
from providers.translation.embeddings import EmbeddingResult
from providers.translation.upstream import Adapter, UpstreamCall
from providers.types import DeploymentConfig, NativeRequest
from providers.vendors.anthropic.kind import ANTHROPIC
from providers.vendors.azure.kind import AZURE
from providers.vendors.bedrock.kind import BEDROCK
from providers.vendors.gemini.kind import GEMINI
from providers.vendors.mock.kind import MOCK
from providers.vendors.openai.kind import OPENAI

# In the order the admin lists them.
KINDS: tuple[ProviderKind, ...] = (OPENAI, AZURE, ANTHROPIC, GEMINI, BEDROCK, MOCK)
NAMES: tuple[str, ...] = tuple(record.name for record in KINDS)

_BY_NAME: Mapping[str, ProviderKind] = MappingProxyType({record.name: record for record in KINDS})


def kind(name: str) -> ProviderKind:
    """The record of the kind ``name``; KeyError for a kind the gateway does not know."""
    return _BY_NAME[name]


def find(name: str) -> ProviderKind | None:
    """The record of the kind ``name``, or None for a kind the gateway does not know."""
    return _BY_NAME.get(name)


def adapter_for(name: str) -> Adapter:
    return kind(name).adapter


async def embed(call: UpstreamCall) -> EmbeddingResult:
    """One embeddings call against the deployment's provider kind."""
    name = call.deployment.provider.kind
    record = find(name)
    embedder = record.embedder if record is not None else None
    if embedder is None:
        raise UnsupportedRequest(f"The {name} provider has no embeddings API.", param="model")
    return await embedder(call)


def native_for(deployment: DeploymentConfig, native: NativeRequest | None) -> NativeRequest | None:
    """What the deployment's adapter gets of a request the client sent in its own dialect:
    the native request when the kind speaks that dialect; else None (the adapter translates the
    internal request), unless the translation could not carry a parameter: then the request is
    refused, naming it, before anything is sent."""
    if native is None:
        return None
    record = find(deployment.provider.kind)
    if record is not None and native.dialect in record.native_dialects:
        return native
    if native.untranslatable:
        param = native.untranslatable[0]
        raise UnsupportedRequest(
            f"'{param}' is not supported by the {deployment.provider.kind} provider serving this model.",
            param=param,
        )
    return None
