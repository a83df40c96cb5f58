"""Anthropic's streamed message as OpenAI ``chat.completion.chunk`` events.

``message_start`` gives the id, model and input usage (role chunk); text deltas become content
deltas; a ``tool_use`` block start becomes a tool call's first delta (position = running tool
counter, not the block index) and its ``input_json_delta`` fragments argument deltas;
``message_delta`` carries the stop reason (finish chunk) and cumulative usage; ``message_stop``
ends the stream with the usage chunk. An ``error`` event becomes an in-stream error."""

from __future__ import annotations

from providers.errors import UpstreamProtocolError
from providers.translation.chunks import ChunkWriter, ToolCall, error_event
from providers.translation.vendor_json import event_object
from providers.types import StreamEvent
from providers.vendors.anthropic.response import finish_reason, usage_from


class AnthropicStreamTranslator:
    def __init__(self, *, provider: str, created: int) -> None:
        self._provider = provider
        self._writer = ChunkWriter(id="", created=created, model="")
        self._usage: dict[str, object] = {}
        self._tools: dict[int, int] = {}  # content block index -> tool call position
        self._started = False
        self.done = False

    def feed(self, event: str, data: bytes) -> list[StreamEvent]:
        parsed = event_object(data, provider=self._provider)
        if parsed is None:
            return []
        kind = parsed.get("type") or event
        handler = getattr(self, f"_on_{kind}", None)
        return handler(parsed) if handler is not None else []  # ping and unknown types: nothing

    def end(self) -> list[StreamEvent]:
        raise UpstreamProtocolError(
            f"The upstream provider '{self._provider}' ended the stream before it was complete."
        )

    def _on_message_start(self, event: dict[str, object]) -> list[StreamEvent]:
        message = event.get("message")
        message = message if isinstance(message, dict) else {}
        self._writer.id = str(message.get("id") or "")
        self._writer.model = str(message.get("model") or "")
        usage = message.get("usage")
        self._usage = dict(usage) if isinstance(usage, dict) else {}
        self._started = True
        return [self._writer.role()]

    def _on_content_block_start(self, event: dict[str, object]) -> list[StreamEvent]:
        block = event.get("content_block")
        index = event.get("index")
        if not isinstance(block, dict) or not isinstance(index, int):
            return []
        if block.get("type") == "tool_use":
            position = self._tools[index] = len(self._tools)
            call = ToolCall(id=str(block.get("id", "")), name=str(block.get("name", "")), arguments="")
            return [self._writer.tool_call(position, call)]
        text = block.get("text")
        if block.get("type") == "text" and isinstance(text, str) and text:
            return [self._writer.text(text)]
        return []

    def _on_content_block_delta(self, event: dict[str, object]) -> list[StreamEvent]:
        delta = event.get("delta")
        if not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if kind == "text_delta":
            return [self._writer.text(str(delta.get("text", "")))]
        index = event.get("index")
        position = self._tools.get(index) if isinstance(index, int) else None
        fragment = delta.get("partial_json")
        if kind == "input_json_delta" and position is not None and isinstance(fragment, str) and fragment:
            return [self._writer.tool_arguments(position, fragment)]
        return []  # thinking, signature and citation deltas have no OpenAI form

    def _on_message_delta(self, event: dict[str, object]) -> list[StreamEvent]:
        usage = event.get("usage")
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})  # cumulative counts
        delta = event.get("delta")
        reason = delta.get("stop_reason") if isinstance(delta, dict) else None
        return [self._writer.finish(finish_reason(reason))] if reason else []

    def _on_message_stop(self, event: dict[str, object]) -> list[StreamEvent]:
        self.done = True
        usage = usage_from(self._usage)
        return [self._writer.usage(usage)] if usage is not None else []

    def _on_error(self, event: dict[str, object]) -> list[StreamEvent]:
        self.done = True
        error = event.get("error")
        error = error if isinstance(error, dict) else {}
        kind = str(error.get("type", "api_error"))
        code = "upstream_overloaded" if kind == "overloaded_error" else "upstream_error"
        return [
            error_event(
                f"The upstream provider '{self._provider}' failed mid-stream: {error.get('message', kind)}",
                code=code,
            )
        ]
