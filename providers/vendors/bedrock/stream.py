"""Bedrock's ConverseStream events (decoded by ``framing``) as OpenAI chunk events.

``messageStart`` → role chunk; ``contentBlockStart.toolUse`` → a tool call's first delta;
``contentBlockDelta`` text → content, ``toolUse.input`` → argument fragments; ``messageStop``
→ finish chunk; ``metadata`` (usage, after the stop) → the usage chunk, end. An exception
frame becomes an in-stream error."""

from __future__ import annotations

from providers.errors import UpstreamProtocolError
from providers.translation.chunks import ChunkWriter, ToolCall, error_event
from providers.translation.vendor_json import event_object
from providers.types import StreamEvent
from providers.vendors.bedrock.response import finish_reason, usage_from


class BedrockStreamTranslator:
    def __init__(self, *, provider: str, created: int, model: str, id: str) -> None:
        self._provider = provider
        self._writer = ChunkWriter(id=id, created=created, model=model)
        self._tools: dict[int, int] = {}  # content block index -> tool call position
        self._stopped = False
        self.done = False

    def feed(self, event: str, data: bytes) -> list[StreamEvent]:
        payload = (event_object(data, provider=self._provider) if data else None) or {}
        if event.startswith(("exception:", "error:")):
            self.done = True
            detail = payload.get("message") or event.partition(":")[2]
            return [error_event(f"The upstream provider '{self._provider}' failed mid-stream: {detail}")]
        handler = getattr(self, f"_on_{event}", None)
        return handler(payload) if handler is not None else []

    def end(self) -> list[StreamEvent]:
        if not self._stopped:
            raise UpstreamProtocolError(
                f"The upstream provider '{self._provider}' ended the stream before it was complete."
            )
        self.done = True
        return []  # stopped but no metadata event: usage unknown, the gateway estimates it

    def _on_messageStart(self, payload: dict[str, object]) -> list[StreamEvent]:
        return [self._writer.role()]

    def _on_contentBlockStart(self, payload: dict[str, object]) -> list[StreamEvent]:
        start = payload.get("start")
        tool = start.get("toolUse") if isinstance(start, dict) else None
        index = payload.get("contentBlockIndex")
        if not isinstance(tool, dict) or not isinstance(index, int):
            return []
        position = self._tools[index] = len(self._tools)
        call = ToolCall(id=str(tool.get("toolUseId", "")), name=str(tool.get("name", "")), arguments="")
        return [self._writer.tool_call(position, call)]

    def _on_contentBlockDelta(self, payload: dict[str, object]) -> list[StreamEvent]:
        delta = payload.get("delta")
        if not isinstance(delta, dict):
            return []
        if isinstance(delta.get("text"), str):
            return [self._writer.text(str(delta["text"]))]
        tool = delta.get("toolUse")
        index = payload.get("contentBlockIndex")
        position = self._tools.get(index) if isinstance(index, int) else None
        fragment = tool.get("input") if isinstance(tool, dict) else None
        if position is not None and isinstance(fragment, str) and fragment:
            return [self._writer.tool_arguments(position, fragment)]
        return []  # reasoning content has no OpenAI form

    def _on_messageStop(self, payload: dict[str, object]) -> list[StreamEvent]:
        self._stopped = True
        return [self._writer.finish(finish_reason(payload.get("stopReason")))]

    def _on_metadata(self, payload: dict[str, object]) -> list[StreamEvent]:
        self.done = True
        usage = usage_from(payload.get("usage"))
        return [self._writer.usage(usage)] if usage is not None else []
