"""The OCR reward's text matching, against hand-worked edit distances."""
import pytest

from adascope_ray.rewards.ocr import levenshtein, quoted_text, text_match


@pytest.mark.parametrize("a,b,d", [
    ("kitten", "sitting", 3),   # k→s, e→i, +g
    ("flaw", "lawn", 2),        # −f, +n
    ("", "abc", 3), ("abc", "", 3), ("same", "same", 0),
    ("ab", "ba", 2),            # no transpositions in plain Levenshtein: two substitutions
])
def test_levenshtein_hand_values(a, b, d):
    assert levenshtein(a, b) == d == levenshtein(b, a)


def test_text_match_normalises_case_and_spaces_and_is_bounded():
    assert text_match("Hello  World\n", "hello world") == 1.0
    # "helloword" vs "helloworld": one deletion of 10 characters -> 1 - 1/10
    assert text_match("Hello Word", "hello world") == pytest.approx(0.9)
    # nothing read: distance 5 = |target| -> 0; a long wrong read is capped at |target| -> 0, not negative
    assert text_match("", "HELLO") == 0.0 and text_match("x" * 40, "hello") == 0.0
    with pytest.raises(ValueError):
        text_match("a", "   ")


def test_quoted_text_takes_the_first_span_in_any_quotes():
    assert quoted_text('a sign that says "Open 24h" at night') == "Open 24h"
    assert quoted_text("a mug reading “coffee”") == "coffee"
    assert quoted_text("a 'stop' sign and \"go\"") == "stop"
    assert quoted_text("a red circle") is None
