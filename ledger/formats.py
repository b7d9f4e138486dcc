"""A live transcript as the messages a model provider takes (OpenAI chat, Anthropic messages).

What Hermes' ``get_messages_as_conversation`` does for its gateway: the system prompt first,
content parts kept, and tool calls paired with their results. A provider refuses a
conversation where an assistant's tool call has no result, or a result answers no call; after
an undo or a rewind that can happen, so unpaired calls and results are left out here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ledger.codec import content_text
from ledger.errors import InvalidArgumentError
from ledger.views import TranscriptMessage

__all__ = ["FORMATS", "render", "to_anthropic", "to_openai"]

FORMATS = ("openai", "anthropic")


def _paired(messages: Sequence[TranscriptMessage]) -> tuple[set[str], set[str]]:
    """The tool call ids that were made, and those that got a result."""
    made = {
        str(call.get("id"))
        for m in messages
        if m.role == "assistant" and m.tool_calls
        for call in m.tool_calls
    }
    answered = {m.tool_call_id for m in messages if m.role == "tool" and m.tool_call_id}
    return made, answered & made


def to_openai(
    messages: Sequence[TranscriptMessage], system_prompt: str | None = None
) -> list[dict[str, Any]]:
    """OpenAI chat-completions ``messages``: a list of role/content mappings."""
    _, answered = _paired(messages)
    out: list[dict[str, Any]] = []
    if system_prompt:
        out.append({"role": "system", "content": system_prompt})
    for m in messages:
        entry: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.name:
            entry["name"] = m.name
        if m.role == "tool":
            if m.tool_call_id not in answered:
                continue
            entry["tool_call_id"] = m.tool_call_id
        calls = [c for c in m.tool_calls or () if str(c.get("id")) in answered]
        if calls:
            entry["tool_calls"] = calls
        elif m.content is None:
            continue  # only calls, none of them answered
        out.append(entry)
    return out


def _anthropic_part(part: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI-style content part as an Anthropic content block (others pass through)."""
    if part.get("type") != "image_url":
        return part
    image = part.get("image_url")
    url = image.get("url", "") if isinstance(image, dict) else str(image or "")
    if url.startswith("data:") and ";base64," in url:
        media, data = url[5:].split(";base64,", 1)
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [_anthropic_part(part) for part in content]


def _tool_input(arguments: Any) -> Any:
    if not isinstance(arguments, str):
        return arguments or {}
    try:
        return json.loads(arguments) if arguments else {}
    except json.JSONDecodeError:
        return {"arguments": arguments}


def to_anthropic(
    messages: Sequence[TranscriptMessage], system_prompt: str | None = None
) -> dict[str, Any]:
    """Anthropic Messages API arguments: ``{"system": ..., "messages": [...]}``.

    System and developer messages join the system prompt; tool results become ``tool_result``
    blocks of a user turn; consecutive turns of one role are merged (the API alternates).
    """
    _, answered = _paired(messages)
    system = [system_prompt] if system_prompt else []
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for m in messages:
        if m.role in ("system", "developer"):
            system.append(content_text(m.content))
        elif m.role == "tool":
            if m.tool_call_id in answered:
                result = {
                    "type": "tool_result",
                    "tool_use_id": m.tool_call_id,
                    "content": _blocks(m.content),
                }
                add("user", [result])
        elif m.role == "assistant":
            uses = [
                {
                    "type": "tool_use",
                    "id": str(call.get("id")),
                    "name": str((call.get("function") or {}).get("name", call.get("name", ""))),
                    "input": _tool_input((call.get("function") or {}).get("arguments")),
                }
                for call in m.tool_calls or ()
                if str(call.get("id")) in answered
            ]
            add("assistant", _blocks(m.content) + uses)
        else:
            add("user", _blocks(m.content))
    return {"system": "\n\n".join(s for s in system if s) or None, "messages": out}


def render(
    messages: Sequence[TranscriptMessage], system_prompt: str | None, format: str
) -> list[dict[str, Any]] | dict[str, Any]:
    """``messages`` in ``format`` (``openai`` or ``anthropic``)."""
    if format == "openai":
        return to_openai(messages, system_prompt)
    if format == "anthropic":
        return to_anthropic(messages, system_prompt)
    raise InvalidArgumentError("format", format, " | ".join(FORMATS))
