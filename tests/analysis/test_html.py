"""The coloured-token HTML page: escaped, one span per token, forking tokens marked."""

from __future__ import annotations

import re

from softthink.analysis import entropy_html


def test_tokens_are_escaped_and_coloured(make_record):
    rec = make_record([0.0, 3.0, 0.1, 0.2, 0.3], tokens=["<script>", "a&b", '"q"', "x", "y"], prompt="Is 1 < 2?")
    page = entropy_html([rec], title="T <1>")
    assert "<script>" not in page and "&lt;script&gt;" in page and "a&amp;b" in page
    assert "Is 1 &lt; 2?" in page and "<title>T &lt;1&gt;</title>" in page
    spans = re.findall(r'<span class="(t[^"]*)" style="background:(#[0-9a-f]{6});color:(#[0-9a-f]{6})"', page)
    assert len(spans) == 5
    assert [s[0] for s in spans].count("t fork") == 1 and spans[1][0] == "t fork"  # top 20% of 5 = 1 token
    assert spans[0][1] != spans[1][1]  # low and high entropy get different colours
    assert 'title="#1 &#x27;a&amp;b&#x27;  H = 3.0000 nats"' in page


def test_soft_steps_and_multiple_records(make_record):
    a = make_record([0.1, 0.2], soft=[True, False])
    b = make_record([0.3])
    page = entropy_html([a, b], mark_forking=False)
    assert page.count('class="t soft"') == 1 and "fork" not in page.split("</style>")[1].split("</h1>")[1][:200]
    assert page.count("<h2>") == 2 and page.startswith("<!DOCTYPE html>")
