"""The game's words: the shipped lists, how a guess is compared with the word, masks and hints.

A guess is judged on *words*: the text is normalized (case and accents ignored) and cut into
runs of letters, so "Ápple!", "apple" and "an apple" hold the word "apple" and "pineapple" does
not. A message tests only a few candidates (``GUESS_EXTRA_WORDS``): a longer one is talk, not a
guess, whatever it holds (see ``rules.Game.message`` for what happens to it and why).

No I/O but reading the lists shipped beside this module, once.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from importlib import resources

__all__ = [
    "LANGUAGES",
    "GUESS_EXTRA_WORDS",
    "WORD_MAX_CHARS",
    "builtin_words",
    "normalize",
    "tokens",
    "guess_sized",
    "is_guess",
    "is_close",
    "is_close_guess",
    "holds",
    "mask_of",
    "hint_count",
    "letter_positions",
    "clean_word",
]

# The shipped lists (``wordlists/<code>.txt``), by language code: the name shown in the lobby.
LANGUAGES = {"en": "English", "de": "Deutsch"}
WORD_MAX_CHARS = 30
# A guess may hold at most this many words beside the word's own ("a flamingo", "flamingo?"):
# so a message tests at most two candidates (a window of the word's length at each place).
GUESS_EXTRA_WORDS = 1


@cache
def builtin_words(language: str = "en") -> tuple[str, ...]:
    """The shipped list of ``language`` (common nouns that can be drawn), in file order."""
    if language not in LANGUAGES:
        raise ValueError(f"no word list for {language!r}")
    text = resources.files(__package__).joinpath("wordlists", f"{language}.txt").read_text("utf-8")
    return tuple(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def normalize(text: str) -> str:
    """What a guess is compared by: case, accents and surrounding or repeated spaces ignored."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.casefold().split())


def tokens(text: str) -> list[str]:
    """The words of ``text``: its runs of letters, normalized ("Ice-cream!" -> ice, cream)."""
    found: list[str] = []
    current: list[str] = []
    for ch in normalize(text):
        if ch.isalpha():
            current.append(ch)
        elif current:
            found.append("".join(current))
            current = []
    if current:
        found.append("".join(current))
    return found


def guess_sized(content: str, word: str) -> bool:
    """Whether ``content`` is short enough to be a guess at ``word`` (its words, plus at most
    ``GUESS_EXTRA_WORDS``). What is longer is talk: it is never judged."""
    return 0 < len(tokens(content)) <= len(tokens(word)) + GUESS_EXTRA_WORDS


def _windows(content: str) -> list[str]:
    """The letters of every run of consecutive words of ``content``."""
    words = tokens(content)
    return ["".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)]


def is_guess(content: str, word: str) -> bool:
    """A correct guess: a guess-sized message in which consecutive words spell the word
    (spaces and hyphens aside; a plural "s" or "es" allowed): "Apple!", "an apple", "apples",
    "icecream" for "ice cream"; not "pineapple" for "apple"."""
    if not guess_sized(content, word):
        return False
    target = "".join(tokens(word))
    return any(w in (target, target + "s", target + "es") for w in _windows(content))


def is_close_guess(content: str, word: str) -> bool:
    """A guess-sized message one letter away from the word (``is_close``) somewhere."""
    if not guess_sized(content, word):
        return False
    target = "".join(tokens(word))
    return any(is_close(w, target) for w in _windows(content))


def holds(content: str, word: str) -> bool:
    """Whether the word is anywhere in ``content`` (inside other words too): what those who
    know the word may not write while it is drawn."""
    target = "".join(tokens(word))
    return bool(target) and target in "".join(tokens(content))


def is_close(guess: str, word: str) -> bool:
    """One letter added, missing or changed, or two neighbours swapped (normalized input)."""
    if guess == word or abs(len(guess) - len(word)) > 1:
        return False
    if len(guess) == len(word):
        diffs = [i for i, (a, b) in enumerate(zip(guess, word, strict=True)) if a != b]
        if len(diffs) == 1:
            return True
        return (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and guess[diffs[0]] == word[diffs[1]]
            and guess[diffs[1]] == word[diffs[0]]
        )
    shorter, longer = (guess, word) if len(guess) < len(word) else (word, guess)
    return any(longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer)))


def letter_positions(word: str) -> list[int]:
    return [i for i, ch in enumerate(word) if ch not in " -"]


def hint_count(word: str, wanted: int | None = None) -> int:
    """Letters revealed over a turn. By default none for 1-2 letters, 1 up to 4, 2 up to 9, 3
    beyond; with the game's ``hints`` setting, that many, always leaving a letter hidden."""
    letters = len(letter_positions(word))
    if wanted is not None:
        return max(0, min(wanted, letters - 1))
    if letters <= 2:
        return 0
    if letters <= 4:
        return 1
    if letters <= 9:
        return 2
    return 3


def mask_of(word: str, revealed: list[int] | tuple[int, ...] = ()) -> str:
    """The word as guessers see it: one character per character of the word (``_`` for a
    hidden letter; spaces, hyphens and revealed letters as they are), joined by spaces, so
    that ``mask[2 * i]`` is the word's i-th character: ``"_ p _ _ _"``."""
    shown = set(revealed)
    return " ".join(ch if ch in " -" or i in shown else "_" for i, ch in enumerate(word))


def clean_word(raw: object) -> str | None:
    """A custom word as the game keeps it (lowercase, single spaces), or None if it is not
    1 to ``WORD_MAX_CHARS`` letters, spaces or hyphens with at least one letter."""
    if not isinstance(raw, str):
        return None
    word = " ".join(raw.split()).lower()
    if not 1 <= len(word) <= WORD_MAX_CHARS:
        return None
    if not all(ch.isalpha() or ch in " -" for ch in word) or not any(ch.isalpha() for ch in word):
        return None
    return word
