"""What counts as one emoji for a reaction (``chat.reactions.is_one_emoji``)."""

from __future__ import annotations

import unittest

from aiotutorial.chat.reactions import is_one_emoji


class OneEmojiTests(unittest.TestCase):
    def test_one_picture_in_its_many_forms(self) -> None:
        for emoji in (
            "👍",  # one picture
            "👍🏽",  # with a skin tone
            "❤️",  # with its emoji presentation
            "🇫🇷",  # a flag: two regional indicators
            "👩‍👩‍👧",  # a family: pictures joined
            "🧑🏽‍💻",  # a profession with a skin tone
            "1️⃣",  # a keycap
            "🏴󠁧󠁢󠁳󠁣󠁴󠁿",  # a region's flag: tags
        ):
            self.assertTrue(is_one_emoji(emoji), ascii(emoji))

    def test_text_several_emoji_and_broken_sequences(self) -> None:
        for text in (
            "",
            "a",
            "ab",
            "👍👍",
            "👍a",
            "a👍",
            "🇫",
            "1",
            "#",
            "\u200d",
            "👍\u200d",
            "👍 ",
        ):
            self.assertFalse(is_one_emoji(text), ascii(text))
        self.assertFalse(is_one_emoji("👍" * 20))
