"""Diffing the plan against observed listings: pure, no sockets."""

import pytest

from orchestrator.plan import Target
from orchestrator.preview import (
    Action,
    ListingError,
    ObservedProxy,
    parse_proxy_page,
    render_table,
    resolve,
    summarize,
)

P = "619d3e78f61b4be68bc5aa0b59edcf7b"
INST = "d512257ecca04d96a0f3a9021018a385in07"
A = "7bf4a8bbb4f4fb58233a242ee13603bpo01"
B = "8bf4a8bbb4f4fb58233a242ee13603bpo01"


def page(*proxies: tuple[str, object]) -> dict[str, object]:
    return {
        "proxy_list": [
            {"proxy": {"pool_id": pid, "consistence_mode": mode, "status": "ACTIVE"}} for pid, mode in proxies
        ]
    }


def test_parse_reads_pool_id_and_mode() -> None:
    """A documented listing page gives one observed proxy per element, keyed by proxy.pool_id."""
    observed = parse_proxy_page(page((A, "global"), (B, "eventual")))
    assert observed == [ObservedProxy(A, "global", "ACTIVE"), ObservedProxy(B, "eventual", "ACTIVE")]


def test_parse_unknown_mode_is_none() -> None:
    """A missing or unknown consistence_mode is observed as None, not guessed."""
    observed = parse_proxy_page(page((A, None), (B, "strong")))
    assert [p.mode for p in observed] == [None, None]


@pytest.mark.parametrize("body", [None, [], {"proxies": []}, {"proxy_list": [{"proxy": {}}]}, {"proxy_list": ["x"]}])
def test_parse_rejects_undocumented_shapes(body: object) -> None:
    """A body without proxy_list[].proxy.pool_id is a listing error, never a silent empty fleet."""
    with pytest.raises(ListingError):
        parse_proxy_page(body)


def test_resolve_marks_change_unchanged_and_missing() -> None:
    """Each explicit target becomes one step: change, unchanged, or missing from the listing."""
    targets = [
        Target(P, INST, A, "session"),
        Target(P, INST, B, "eventual"),
        Target(P, INST, "x" * 31 + "po01", "global"),
    ]
    steps = resolve(targets, parse_proxy_page(page((A, "global"), (B, "eventual"))))
    assert [(s.proxy_id, s.mode_before, s.action) for s in steps] == [
        (A, "global", Action.CHANGE),
        (B, "eventual", Action.UNCHANGED),
        ("x" * 31 + "po01", None, Action.MISSING),
    ]


def test_resolve_expands_all_in_listing_order() -> None:
    """proxy_id: all becomes one step per listed proxy, with the target's mode."""
    steps = resolve([Target(P, INST, "all", "global")], parse_proxy_page(page((B, "session"), (A, "global"))))
    assert [(s.proxy_id, s.mode_target, s.action) for s in steps] == [
        (B, "global", Action.CHANGE),
        (A, "global", Action.UNCHANGED),
    ]


def test_summary_and_table() -> None:
    """The summary counts every action; the table lists changes and missing proxies, not unchanged ones."""
    targets = [
        Target(P, INST, A, "session"),
        Target(P, INST, B, "eventual"),
        Target(P, INST, "y" * 31 + "po01", "global"),
    ]
    steps = resolve(targets, parse_proxy_page(page((A, "global"), (B, "eventual"))))
    assert summarize(steps) == {"change": 1, "unchanged": 1, "missing": 1}
    table = render_table(steps)
    assert len(table) == 2
    assert "global -> session" in table[0] and A in table[0]
    assert "not found" in table[1]
    assert len(render_table(steps, show_unchanged=True)) == 3
