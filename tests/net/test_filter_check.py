"""POST /filters/check: a filter checked as a history query with its masks and events would be."""

from __future__ import annotations

from net_helpers import Live


def test_a_filter_is_checked_against_the_formats_the_user_may_see(live: Live) -> None:
    with live.client("operator") as http:
        good = http.post(
            "/filters/check", json={"filter": "data.value > 3 and level >= WARNING", "mask": ["devices.**"]}
        )
        assert good.status_code == 200
        assert good.json() == {"filter": "data.value > 3 and level >= WARNING", "data_fields": ["value"]}
        typo = http.post("/filters/check", json={"filter": "data.valu > 3", "mask": ["devices.**"]})
        assert typo.status_code == 400
        error = typo.json()["error"]
        assert (
            error["type"] == "FilterError"
            and error["column"] == 6
            and "did you mean 'data.value'" in error["message"]
        )
        broken = http.post("/filters/check", json={"filter": "level >= ", "event": ["measurement"]})
        assert broken.status_code == 400 and broken.json()["error"]["column"] == 10
        unknown = http.post("/filters/check", json={"filter": "level > 1", "mask": ["a..b"]})
        assert unknown.status_code == 400 and unknown.json()["error"]["type"] == "BadRequest"
