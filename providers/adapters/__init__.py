"""One adapter per provider kind, looked up by ``Provider.kind``."""

from __future__ import annotations

from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.azure import AzureAdapter
from providers.adapters.base import Adapter, UpstreamCall, UpstreamStream
from providers.adapters.bedrock import BedrockAdapter
from providers.adapters.gemini import GeminiAdapter
from providers.adapters.mock import MockAdapter
from providers.adapters.openai import OpenAIAdapter

__all__ = ["Adapter", "UpstreamCall", "UpstreamStream", "adapter_for"]

_ADAPTERS: dict[str, Adapter] = {
    "openai": OpenAIAdapter(),
    "azure": AzureAdapter(),
    "anthropic": AnthropicAdapter(),
    "gemini": GeminiAdapter(),
    "bedrock": BedrockAdapter(),
    "mock": MockAdapter(),
}


def adapter_for(kind: str) -> Adapter:
    return _ADAPTERS[kind]
