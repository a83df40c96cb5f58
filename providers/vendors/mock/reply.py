"""What the mock provider answers, decided once per request before any byte is sent.

The reply reads the conversation: when it ends with tool results the answer is text that
quotes them (so an agent loop ends); otherwise it calls the tools ``providers.vendors.mock.tools``
picks, with arguments made from their schemas (``providers.vendors.mock.schema``); otherwise it
is text, ``This is mock-echo. You said: <last user message>``, shaped by ``response_format``
(``json_object``: ``{"message": <that text>}``; ``json_schema``: a value of the schema). Every one
of the ``n`` choices is the same answer (tool calls get ids of their own). Token counts are real
(``providers.tokens``); ``max_tokens`` / ``max_completion_tokens`` cut each choice with
``finish_reason: "length"``, and no choice is longer than ``MAX_REPLY_TOKENS``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson

from providers.errors import UnsupportedRequest
from providers.tokens import count_message_tokens, count_tokens, split_tokens
from providers.translation.chat_request import max_output_tokens, messages, response_format, text_of
from providers.translation.upstream import JsonObject
from providers.types import Usage
from providers.vendors.mock.schema import Prompt, example, prompt_of
from providers.vendors.mock.strict import strict_violation
from providers.vendors.mock.tools import Tool, call_id, tools_to_call, toolset

MAX_REPLY_TOKENS = 4096
MAX_CHOICES = 128


@dataclass(frozen=True, slots=True)
class ToolResult:
    name: str
    content: str


@dataclass(frozen=True, slots=True)
class Conversation:
    """What the reply depends on: the last user message's text and the tool results the
    conversation ends with."""

    said: str
    results: tuple[ToolResult, ...]


@dataclass(frozen=True, slots=True)
class PlannedCall:
    id: str
    name: str
    arguments: tuple[str, ...]  # the tokens of the JSON arguments, cut short by a token limit


@dataclass(frozen=True, slots=True)
class PlannedChoice:
    """One choice: text tokens (``content``), or tool calls when ``content`` is None."""

    index: int
    content: tuple[str, ...] | None
    calls: tuple[PlannedCall, ...]
    finish: str
    legacy: bool = False  # a ``function_call`` rather than ``tool_calls``

    @property
    def tokens(self) -> int:
        if self.content is not None:
            return len(self.content)
        return sum(len(call.arguments) for call in self.calls)


@dataclass(frozen=True, slots=True)
class Plan:
    choices: tuple[PlannedChoice, ...]
    usage: Usage


def plan_reply(body: JsonObject) -> Plan:
    """The whole answer to ``body``: a 400 (``UnsupportedRequest``) for what OpenAI would refuse."""
    found = toolset(body)
    fmt, spec = response_format(body)
    _check_format(body, fmt=fmt, spec=spec)
    conversation = read_conversation(body)
    limit = min(max_output_tokens(body) or MAX_REPLY_TOKENS, MAX_REPLY_TOKENS)
    calls = [] if conversation.results else tools_to_call(found, said=conversation.said)
    if calls:
        choices = _calls_choices(calls, body=body, said=conversation.said, limit=limit, legacy=found.legacy)
    else:
        text = _content(conversation, fmt=fmt, spec=spec)
        choices = _text_choices(text, limit=limit, count=_choice_count(body))
    completion = sum(choice.tokens for choice in choices)
    return Plan(choices=choices, usage=Usage(prompt_tokens=prompt_tokens(body), completion_tokens=completion))


def _text_choices(text: str, *, limit: int, count: int) -> tuple[PlannedChoice, ...]:
    tokens = split_tokens(text)
    finish = "length" if len(tokens) > limit else "stop"
    content = tuple(tokens[:limit])
    return tuple(PlannedChoice(index=i, content=content, calls=(), finish=finish) for i in range(count))


def _choice_count(body: JsonObject) -> int:
    n = body.get("n")
    return min(n, MAX_CHOICES) if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1


def _check_format(body: JsonObject, *, fmt: str, spec: JsonObject | None) -> None:
    if fmt == "json_schema" and spec is not None and spec.get("strict") is True:
        schema = spec.get("schema")
        violation = strict_violation(schema if isinstance(schema, dict) else {})
        if violation is not None:
            raise UnsupportedRequest(
                f"Invalid schema for response_format '{str(spec.get('name', ''))[:64]}': {violation}",
                param="response_format",
                code="invalid_json_schema",
            )
    if fmt == "json_object" and not any("json" in _message_text(m).lower() for m in messages(body)):
        raise UnsupportedRequest(
            "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
            "'json_object'.",
            param="messages",
            code="invalid_value",
        )


def read_conversation(body: JsonObject) -> Conversation:
    listed = messages(body)
    users = [text_of(m.get("content")) for m in listed if m.get("role") == "user"]
    names = {
        str(call.get("id")): str(function.get("name", ""))
        for m in listed
        for call in _list(m.get("tool_calls"))
        if isinstance(call, dict) and isinstance(function := call.get("function"), dict)
    }
    results: list[ToolResult] = []
    for message in reversed(listed):
        if message.get("role") not in ("tool", "function"):
            break
        name = names.get(str(message.get("tool_call_id"))) or str(message.get("name") or "the tool")
        results.append(ToolResult(name=name, content=text_of(message.get("content"))))
    return Conversation(said=users[-1].strip() if users else "", results=tuple(reversed(results)))


def _seed(body: JsonObject) -> str:
    """A digest of the messages: tool-call ids are the same for the same conversation."""
    return hashlib.sha256(orjson.dumps(messages(body))).hexdigest()


def reply_text(conversation: Conversation) -> str:
    if conversation.results:
        quoted = "; ".join(f"{r.name} returned: {r.content.strip()}" for r in conversation.results)
        return f"This is mock-echo. {quoted}"
    said = conversation.said
    return f"This is mock-echo. You said: {said}" if said else "This is mock-echo. You sent no text."


def _content(conversation: Conversation, *, fmt: str, spec: JsonObject | None) -> str:
    if fmt == "json_object":
        return orjson.dumps({"message": reply_text(conversation)}).decode()
    schema = spec.get("schema") if spec is not None else None
    if fmt != "json_schema" or not isinstance(schema, dict):
        return reply_text(conversation)
    hint = "; ".join(r.content for r in conversation.results) or conversation.said
    value = example(schema, prompt=prompt_of(hint), param="response_format.json_schema.schema")
    return orjson.dumps(value).decode()


def _calls_choices(
    calls: list[Tool], *, body: JsonObject, said: str, limit: int, legacy: bool
) -> tuple[PlannedChoice, ...]:
    arguments = _call_arguments(calls, prompt=prompt_of(said), limit=limit)
    seed = _seed(body)
    return tuple(
        _calls_choice(arguments, calls=len(calls), seed=seed, index=i, limit=limit, legacy=legacy)
        for i in range(_choice_count(body))
    )


def _call_arguments(calls: list[Tool], *, prompt: Prompt, limit: int) -> list[tuple[str, list[str]]]:
    """Each call's name and argument tokens, in order, until ``limit`` tokens are reached: the
    calls after that would be cut from every choice."""
    made: list[tuple[str, list[str]]] = []
    total = 0
    for tool in calls:
        if total >= limit:
            break
        value = example(tool.parameters, prompt=prompt, param=tool.param)
        tokens = split_tokens(orjson.dumps(value).decode())
        made.append((tool.name, tokens))
        total += len(tokens)
    return made


def _calls_choice(
    arguments: list[tuple[str, list[str]]], *, calls: int, seed: str, index: int, limit: int, legacy: bool
) -> PlannedChoice:
    """One choice's calls; past ``limit`` argument tokens the rest is cut (``length``)."""
    budget, cut = limit, len(arguments) < calls
    planned: list[PlannedCall] = []
    for position, (name, tokens) in enumerate(arguments):
        if budget <= 0:
            cut = True
            break
        cut = cut or len(tokens) > budget
        kept = tuple(tokens[:budget])
        budget -= len(kept)
        planned.append(
            PlannedCall(id=call_id(seed, choice=index, position=position), name=name, arguments=kept)
        )
    finish = "length" if cut else "function_call" if legacy else "tool_calls"
    return PlannedChoice(index=index, content=None, calls=tuple(planned), finish=finish, legacy=legacy)


def _message_text(message: JsonObject) -> str:
    """A message as the tokenizer counts it: its text, then each call's name and arguments."""
    pieces = [text_of(message.get("content"))]
    legacy = message.get("function_call")
    calls = [c.get("function") for c in _list(message.get("tool_calls")) if isinstance(c, dict)]
    for function in [*calls, legacy]:
        if isinstance(function, dict):
            pieces.extend((str(function.get("name", "")), str(function.get("arguments", ""))))
    return " ".join(piece for piece in pieces if piece)


def prompt_tokens(body: JsonObject) -> int:
    """The messages (with OpenAI's framing), plus the compact JSON of the tool definitions and of
    the response format, which OpenAI bills as part of the prompt (the same sum the gateway
    estimates a request by)."""
    extras = (body.get(name) for name in ("tools", "functions", "response_format"))
    return count_message_tokens([_message_text(m) for m in messages(body)]) + sum(
        count_tokens(orjson.dumps(extra).decode()) for extra in extras if extra is not None
    )


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []
