"""The renderings behind ``show``: part shapes other gateways send, sizes, caps and times."""

from __future__ import annotations

import base64
import datetime as dt

from ledger.cli._render import cap, content_display, format_time, tool_call_line


def test_a_percent_encoded_data_url_shows_its_decoded_size() -> None:
    part = {"type": "image_url", "image_url": {"url": "data:image/svg+xml,%3Csvg%2F%3E"}}
    assert content_display([part]) == "[image: image/svg+xml, 6 bytes]"


def test_a_data_url_size_is_given_in_kib_above_a_kibibyte() -> None:
    data = base64.b64encode(bytes(3 * 1024)).decode()
    part = {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{data}"}}
    assert content_display([part]) == "[image: image/jpeg, 3.0 KiB]"


def test_an_anthropic_base64_image_shows_its_media_type_and_size() -> None:
    data = base64.b64encode(bytes(10)).decode()
    part = {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": data}}
    assert content_display([part]) == "[image: image/gif, 10 bytes]"


def test_an_image_url_given_as_a_string_is_shown() -> None:
    part = {"type": "input_image", "image_url": "https://x.test/a.png"}
    assert content_display([part]) == "[image: https://x.test/a.png]"


def test_parts_are_shown_one_per_line() -> None:
    parts = [{"type": "text", "text": "a"}, {"type": "file"}, {"type": "text", "text": "b"}]
    assert content_display(parts) == "a\n[file]\nb"


def test_an_anthropic_tool_use_shows_its_input_as_json() -> None:
    call = {"type": "tool_use", "id": "toolu_1", "name": "read", "input": {"path": "é"}}
    assert tool_call_line(call) == '→ read(toolu_1) {"path": "é"}'


def test_cap_leaves_text_at_the_limit_alone() -> None:
    assert cap("abc", 3) == "abc"


def test_format_time_shows_an_aware_time_in_utc() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert format_time(dt.datetime(2024, 5, 1, 14, 0, tzinfo=plus_two)) == "2024-05-01 12:00:00"
