"""A planned reply's choices on OpenAI's ``chat.completion`` wire format."""

from __future__ import annotations

from providers.translation.chunks import Choice, ToolCall
from providers.vendors.mock.reply import PlannedChoice


def _tool_calls(choice: PlannedChoice) -> tuple[ToolCall, ...]:
    return tuple(ToolCall(id=c.id, name=c.name, arguments="".join(c.arguments)) for c in choice.calls)


def choice_wire(choice: PlannedChoice) -> dict[str, object]:
    """One ``choices[]`` entry of a ``chat.completion``."""
    content = None if choice.content is None else "".join(choice.content)
    if not choice.legacy:
        return Choice(
            content=content, tool_calls=_tool_calls(choice), finish_reason=choice.finish, index=choice.index
        ).wire()
    message: dict[str, object] = {"role": "assistant", "content": content, "refusal": None}
    if choice.calls:
        call = choice.calls[0]
        message["function_call"] = {"name": call.name, "arguments": "".join(call.arguments)}
    return {"index": choice.index, "message": message, "logprobs": None, "finish_reason": choice.finish}
