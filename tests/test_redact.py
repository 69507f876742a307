"""Scrubbing secrets, whole or in fragments, out of text."""

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.redact import MASK, MIN_RUN, Scrubber, scrub

TOKEN = "MIIEfQYJKoZIhvcNAQcCoIIEbjCCBGoCAQExDTALBglghkgBZQMEAgEwggLd" * 50


def test_whole_secrets_are_masked() -> None:
    """A secret anywhere in the text becomes ***."""
    assert scrub("token=s3cret-value; again s3cret-value", ["s3cret-value"]) == "token=***; again ***"


def test_a_truncated_quote_of_a_long_secret_is_masked() -> None:
    """A prefix of a multi-KB token, as a gateway's error page quotes it, is masked too."""
    text = f"Got more than 8190 bytes when reading: b'{TOKEN[:120]}"
    out = scrub(text, [TOKEN])
    assert TOKEN[:20] not in out and out == f"Got more than 8190 bytes when reading: b'{MASK}"


def test_fragments_in_the_middle_are_masked() -> None:
    """Any run of 8+ characters taken from inside a secret is masked, wherever it starts."""
    secret = "correct horse battery staple"
    out = scrub("x horse battery y", [secret])
    assert out == f"x{MASK}y"


def test_ordinary_text_is_left_alone() -> None:
    """Text sharing less than 8 characters with a secret is unchanged."""
    assert scrub("instance d512 failed: busy", ["MIIsupersecret"]) == "instance d512 failed: busy"
    assert Scrubber([])("anything") == "anything"


def test_short_secrets_are_masked_only_whole() -> None:
    """A secret shorter than 8 characters is masked when it appears whole."""
    assert scrub("pw=abc12 ok", ["abc12"]) == "pw=*** ok"


def reference_scrub(text: str, secrets: list[str]) -> str:
    """The rule, spelt out slowly: whole secrets, then every 8+ run found inside a secret, checked everywhere."""
    kept = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
    for secret in kept:
        text = text.replace(secret, MASK)
    hidden = [False] * len(text)
    for i in range(len(text) - MIN_RUN + 1):
        if any(text[i : i + MIN_RUN] in secret for secret in kept):
            hidden[i : i + MIN_RUN] = [True] * MIN_RUN
    return "".join(
        MASK if h and (i == 0 or not hidden[i - 1]) else "" if h else c
        for i, (c, h) in enumerate(zip(text, hidden, strict=True))
    )


@settings(max_examples=400, deadline=None)
@given(
    secret=st.text(alphabet="abcdefgh0123", min_size=4, max_size=40),
    cuts=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=4),
    filler=st.lists(st.text(alphabet="abcdefgh0123 -", max_size=12), min_size=5, max_size=5),
)
def test_the_quick_first_look_never_lets_a_fragment_through(
    secret: str, cuts: list[tuple[int, int]], filler: list[str]
) -> None:
    """Text built of fillers and slices of the secret at every offset scrubs exactly as the slow reference does:
    the aligned-block first look only skips text that holds no fragment."""
    pieces = [secret[a : a + b] for a, b in cuts]
    text = "".join(f + p for f, p in zip(filler, (pieces + [""] * 5)[:5], strict=True))
    assert Scrubber([secret])(text) == reference_scrub(text, [secret])


def test_a_fragment_is_found_at_every_offset_and_length() -> None:
    """Every slice of 8+ characters of a secret, after 0 to 11 characters of other text, is masked: whatever
    the alignment, the quick first look cannot step over it."""
    secret = "ABCDEFGHIJKLMNOPQRSTUVWX"
    scrubber = Scrubber([secret])
    for lead in range(12):
        for start in range(len(secret) - MIN_RUN + 1):
            for end in range(start + MIN_RUN, min(start + 11, len(secret)) + 1):
                text = "." * lead + secret[start:end] + "."
                assert scrubber(text) == "." * lead + MASK + ".", (lead, start, end)
