"""Scrubbing secrets, whole or in fragments, out of text."""

from orchestrator.redact import MASK, Scrubber, scrub

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
