"""An OpenAI chat request as an Anthropic ``/v1/messages`` request.

Defaults and choices: ``max_tokens`` (required by Anthropic) is ``max_completion_tokens`` or
``max_tokens``, else ``DEFAULT_MAX_TOKENS``; ``response_format`` json_schema becomes
``output_config.format``; json_object, ``n`` > 1, ``logprobs`` and temperatures above 1 are
refused with a 400; ``seed``, penalties and ``logit_bias`` are dropped."""

from __future__ import annotations

import orjson

from providers.errors import UnsupportedRequest
from providers.translation import chat_request as req
from providers.translation.upstream import JsonObject
from providers.translation.vendor_json import json_headers
from providers.types import DeploymentConfig

PROVIDER = "anthropic"

DEFAULT_MAX_TOKENS = 4096


def to_upstream(
    body: JsonObject, deployment: DeploymentConfig, *, stream: bool
) -> tuple[str, dict[str, str], bytes]:
    payload = _payload(body, deployment.upstream_model)
    if stream:
        payload["stream"] = True
    provider = deployment.provider
    headers = json_headers(stream=stream, key_header="x-api-key", api_key=provider.api_key)
    headers["anthropic-version"] = provider.api_version
    return f"{provider.base_url}/v1/messages", headers, orjson.dumps(payload)


def _payload(body: JsonObject, model: str) -> JsonObject:
    req.refuse_multiple_choices(body, provider=PROVIDER)
    req.refuse_logprobs(body, provider=PROVIDER)
    payload: JsonObject = {
        "model": model,
        "max_tokens": req.max_output_tokens(body) or DEFAULT_MAX_TOKENS,
        "messages": messages(body),
    }
    system = [{"type": "text", "text": text} for text in req.system_texts(body) if text]
    if system:
        payload["system"] = system
    payload.update(_sampling(body))
    payload.update(_tools(body))
    output = _output_config(body)
    if output:
        payload["output_config"] = output
    user = body.get("user")
    if isinstance(user, str) and user:
        payload["metadata"] = {"user_id": user}
    return payload


def _sampling(body: JsonObject) -> JsonObject:
    out: JsonObject = {}
    temperature = req.number(body, "temperature")
    if temperature is not None:
        if temperature > 1:
            raise UnsupportedRequest(
                "The anthropic provider takes a temperature between 0 and 1.", param="temperature"
            )
        out["temperature"] = temperature
    top_p = req.number(body, "top_p")
    if top_p is not None:
        out["top_p"] = top_p
    top_k = body.get("top_k")
    if isinstance(top_k, int) and not isinstance(top_k, bool):
        out["top_k"] = top_k
    stop = req.stop_sequences(body)
    if stop:
        out["stop_sequences"] = stop
    return out


def _output_config(body: JsonObject) -> JsonObject:
    kind, spec = req.response_format(body)
    if kind == "json_schema" and spec is not None:
        return {"format": {"type": "json_schema", "schema": spec["schema"]}}
    if kind != "text":
        raise UnsupportedRequest(
            f"response_format '{kind}' is not supported by the anthropic provider; "
            "use json_schema with a schema.",
            param="response_format",
        )
    return {}


def _tools(body: JsonObject) -> JsonObject:
    tools = req.function_tools(body, provider=PROVIDER)
    if not tools:
        return {}
    out: JsonObject = {"tools": [_tool(t) for t in tools]}
    choice = _tool_choice(req.tool_choice(body), body.get("parallel_tool_calls"))
    if choice is not None:
        out["tool_choice"] = choice
    return out


def _tool(tool: req.FunctionTool) -> JsonObject:
    spec: JsonObject = {
        "name": tool.name,
        "input_schema": tool.parameters or {"type": "object", "properties": {}},
    }
    if tool.description:
        spec["description"] = tool.description
    if tool.strict is not None:
        spec["strict"] = tool.strict
    return spec


def _tool_choice(choice: str | None, parallel: object) -> JsonObject | None:
    if choice == "none":
        return {"type": "none"}
    if choice is not None and choice.startswith("function:"):
        out: JsonObject = {"type": "tool", "name": choice.removeprefix("function:")}
    elif choice == "required":
        out = {"type": "any"}
    elif choice in (None, "auto"):
        out = {"type": "auto"}
    else:
        raise UnsupportedRequest(f"Unknown tool_choice '{choice}'.", param="tool_choice")
    if parallel is False:
        out["disable_parallel_tool_use"] = True
    elif choice is None:
        return None
    return out


def messages(body: JsonObject) -> list[JsonObject]:
    """OpenAI messages as Anthropic turns: system messages left out (they go to ``system``),
    tool results as ``tool_result`` blocks of a user turn, same-role neighbours merged."""
    return req.turns(body, _turn, blocks_key="content")


def _turn(message: JsonObject) -> tuple[str, list[JsonObject]]:
    role = message.get("role")
    content = message.get("content")
    if role == "user":
        return "user", [_block(part) for part in req.parts(content, provider=PROVIDER) if part != ""]
    if role == "assistant":
        text = req.text_of(content)
        blocks: list[JsonObject] = [{"type": "text", "text": text}] if text else []
        blocks.extend(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
            for call in req.tool_calls(message)
        )
        return "assistant", blocks
    if role == "tool":
        result = {"type": "tool_result", "tool_use_id": str(message.get("tool_call_id", ""))}
        return "user", [{**result, "content": req.text_of(content)}]
    raise UnsupportedRequest(f"Messages with role '{role}' are not supported by the anthropic provider.")


def _block(part: str | req.Image) -> JsonObject:
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if part.inline:
        return {"type": "image", "source": {"type": "base64", "media_type": part.mime, "data": part.data}}
    return {"type": "image", "source": {"type": "url", "url": part.url}}
