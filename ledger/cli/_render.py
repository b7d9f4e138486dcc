"""Plain-text renderings of session heads and transcript messages for ``show`` and ``sessions``.

Everything here builds rich ``Text`` (never markup), so message content is printed as stored
but for control characters, shown as escapes (:func:`ledger.cli._output.printable`: a message
body keeps its newlines and tabs, a one-line field escapes them too); what a style conveys (a
retraction) is also said in words, so it survives a pipe.
Times are shown in UTC as ``YYYY-MM-DD HH:MM:SS``; ``--json`` carries them in ISO 8601.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from ledger.cli._output import printable, text
from ledger.views import SessionHead, TranscriptMessage

__all__ = [
    "DEFAULT_MAX_CHARS",
    "cap",
    "content_display",
    "format_time",
    "head_summary",
    "message_text",
    "sessions_table",
    "tool_call_line",
]

#: How many characters of a message (and of the system prompt) ``show`` prints by default.
DEFAULT_MAX_CHARS = 2000
_ROLE_STYLE = {"user": "bold cyan", "assistant": "green", "tool": "yellow", "system": "magenta"}
_IMAGE_TYPES = frozenset({"image_url", "image", "input_image"})
_TITLE_WIDTH = 40


def format_time(value: dt.datetime | None) -> str:
    """``value`` in UTC as ``YYYY-MM-DD HH:MM:SS`` (a naive time is taken as UTC); ``-`` if
    there is none."""
    if value is None:
        return "-"
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def cap(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars`` characters with a note of how many were cut (0: no cap)."""
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}… [{len(text) - max_chars} characters cut]"


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count / (1024 * 1024):.1f} MiB"


def _data_url(url: str) -> str:
    """A ``data:`` URL as its media type and decoded size, e.g. ``image/png, 300 bytes``."""
    header, _, payload = url[len("data:") :].partition(",")
    params = header.split(";")
    encoded = params[-1].strip().lower() == "base64"
    media_type = params[0].strip() if params[0].strip() and "=" not in params[0] else ""
    if media_type.lower() == "base64":
        media_type = ""
    if encoded:
        digits = "".join(payload.split()).rstrip("=")
        size = len(digits) * 3 // 4
    else:
        size = len(urllib.parse.unquote_to_bytes(payload))
    return f"{media_type or 'text/plain'}, {_size(size)}"


def _image_label(part: dict[str, Any]) -> str:
    """``[image: URL]`` for OpenAI (``image_url``/``input_image``) and Anthropic (``image``)
    parts; data URLs and base64 sources as their media type and size."""
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    source = part.get("source")
    if not isinstance(url, str) and isinstance(source, dict):
        if source.get("type") == "base64" and isinstance(source.get("data"), str):
            data = "".join(source["data"].split()).rstrip("=")
            return f"[image: {source.get('media_type') or 'unknown'}, {_size(len(data) * 3 // 4)}]"
        url = source.get("url")
    if not isinstance(url, str) or not url:
        return "[image]"
    if url[:5].lower() == "data:":
        return f"[image: {_data_url(url)}]"
    return f"[image: {url}]"


def _part_display(part: Any) -> str:
    if not isinstance(part, dict):
        return f"[{type(part).__name__}]"
    kind = part.get("type")
    if kind in _IMAGE_TYPES:
        return _image_label(part)
    text = part.get("text")
    if isinstance(text, str) and kind in (None, "text", "input_text", "output_text"):
        return text
    return f"[{kind if isinstance(kind, str) and kind else 'part'}]"


def content_display(content: str | list[dict[str, Any]] | None) -> str:
    """Content as a person reads it: text as is, ``None`` as nothing, parts one per line (text
    parts as their text, images as ``[image: …]``, any other part as ``[<type>]``)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(_part_display(part) for part in content)


def _call_label(name: str | None, call_id: str | None) -> str:
    return f"{name or '?'}({call_id})" if call_id else (name or "?")


def tool_call_line(call: dict[str, Any]) -> str:
    """One requested tool call: ``→ name(call_id) arguments`` (OpenAI or Anthropic shape)."""
    function = call.get("function")
    spec = function if isinstance(function, dict) else call
    arguments = spec.get("arguments", call.get("input"))
    if arguments is None:
        shown = ""
    elif isinstance(arguments, str):
        shown = arguments
    else:
        shown = json.dumps(arguments, ensure_ascii=False)
    name = spec.get("name")
    call_id = call.get("id")
    label = _call_label(
        name if isinstance(name, str) else None, call_id if isinstance(call_id, str) else None
    )
    return f"→ {label} {shown}".rstrip()


def _body(message: TranscriptMessage) -> str:
    """The message's text: a tool result's label, its content, then its tool calls."""
    lines = []
    content = content_display(message.content)
    if message.role == "tool" or message.tool_call_id:
        label = _call_label(message.tool_name or message.name, message.tool_call_id)
        content = f"← {label} {content}".rstrip()
    if content:
        lines.append(content)
    lines.extend(tool_call_line(call) for call in message.tool_calls or ())
    return "\n".join(lines)


def message_text(message: TranscriptMessage, max_chars: int) -> Text:
    """``sequence  time  role [retracted] body``: the gateway's time of the message, its body
    capped at ``max_chars`` and continuation lines indented under the first."""
    when = format_time(message.created_at or message.recorded_at)
    prefix = f"{message.sequence:>5} {when} {printable(message.role):>9} "
    if message.retracted:
        prefix += "[retracted] "
    body = printable(cap(_body(message), max_chars), multiline=True)
    body = body.replace("\n", "\n" + " " * len(prefix))
    if message.retracted:
        return Text.assemble((prefix, "strike dim"), (body, "dim"))
    return Text.assemble((prefix, _ROLE_STYLE.get(message.role, "")), body)


def head_summary(head: SessionHead, max_chars: int) -> Text:
    """The session at a glance: identity and counts, its times, and its system prompt."""
    fields = [
        f"key={head.session_key or '-'}",
        f"state={head.state}",
        f"source={head.source or '-'}",
        f"sequence={head.sequence}",
        f"messages={head.message_count}",
    ]
    if head.model:
        fields.append(f"model={head.model}")
    if head.title:
        fields.append(f"title={head.title}")
    times = [f"started {format_time(head.started_at)}"]
    if head.ended_at is not None or head.end_reason:
        reason = f" ({head.end_reason})" if head.end_reason else ""
        times.append(f"ended {format_time(head.ended_at)}{reason}")
    times.append(f"last activity {format_time(head.last_activity_at)} (UTC)")
    summary = Text.assemble(
        (printable(head.session_id), "bold"),
        " ",
        printable(" ".join(fields)),
        "\n",
        " · ".join(times),
    )
    if head.system_prompt:
        prompt = printable(cap(head.system_prompt, max_chars), multiline=True)
        summary.append("\nsystem prompt: ", style="magenta")
        summary.append(prompt.replace("\n", "\n  "))
    return summary


def sessions_table(heads: Sequence[SessionHead]) -> Table:
    """The catalog as a table: identifiers and times never wrapped or cut (titles may be)."""
    table = Table()
    for column in ("session_id", "key", "source", "state", "messages", "sequence"):
        table.add_column(column, no_wrap=True)
    table.add_column("last activity (UTC)", no_wrap=True)
    table.add_column("title", no_wrap=True, max_width=_TITLE_WIDTH)
    for head in heads:
        table.add_row(
            *(
                text(value)
                for value in (
                    head.session_id,
                    head.session_key or "",
                    head.source or "",
                    head.state,
                    str(head.message_count),
                    str(head.sequence),
                    format_time(head.last_activity_at),
                    head.title or "",
                )
            )
        )
    return table
