"""How the dialogue env turns user messages into tokens: the tokenizer's chat template, or a
plain-text fallback when it has none.

The env never re-tokenizes what the agent wrote (its tokens are its actions); it tokenizes the
opening on ``reset`` and, after each assistant turn, only the text that the rendering of the
conversation adds after that turn: the end of the assistant's turn, the user's message and the
cue for the assistant's next turn.

* **Chat template** (``tokenizer.chat_template`` is set, e.g. SmolLM2-Instruct): the opening is
  ``apply_chat_template([opening], add_generation_prompt=True)``; a user turn is the text the
  template writes after an assistant message's content. When the template closes a turn with
  the EOS token's text (ChatML's ``<|im_end|>`` is SmolLM2's EOS) and the agent ended its turn
  with EOS, that closing is not written twice. So a conversation whose assistant turns are
  tokenized text ending in EOS reads exactly as ``apply_chat_template`` of the conversation.
* **Plain text** (no template, e.g. the tiny preset): ``"User: {opening}\\nAssistant:"`` (with
  the tokenizer's special tokens, as a single-turn prompt), then ``"\\nUser: {reply}\\nAssistant:"``
  after each assistant turn; the agent's EOS stays in the window as its end of turn.

A user's last word (``FinalReply``, or the reply to the last allowed turn) has no cue after it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from rlhf_gym.dialogue.conversation import assistant, plain_opening, plain_user_turn, user

_MARK = "\u2063Turn-End\u2063"
"""Stands in for an assistant message's content when a template is rendered, to find where
that content ends."""


class ChatFormat(Protocol):
    """Token ids of the opening and of each later user turn of a conversation."""

    tokenizer: PreTrainedTokenizerBase

    def opening_ids(self, opening: str) -> list[int]: ...

    def user_turn_ids(self, reply: str, after_eos: bool, cue: bool) -> list[int]: ...


class TemplateChat:
    """Turns rendered with the tokenizer's chat template (see the module docstring)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer
        # Scripted users repeat their replies: render each (reply, cue) once.
        self._after_turn = lru_cache(maxsize=4096)(self._text_after_turn)
        self._after_turn("probe", True)  # a template that cannot be used fails here

    def opening_ids(self, opening: str) -> list[int]:
        text = self.tokenizer.apply_chat_template(
            [user(opening)], tokenize=False, add_generation_prompt=True
        )
        return self._encode(text)

    def user_turn_ids(self, reply: str, after_eos: bool, cue: bool) -> list[int]:
        text = self._after_turn(reply, cue)
        eos = self.tokenizer.eos_token
        if after_eos and text.startswith(eos):
            text = text[len(eos) :]  # the agent's EOS already closed its turn
        return self._encode(text)

    def _text_after_turn(self, reply: str, cue: bool) -> str:
        conversation = [user("-"), assistant(_MARK), user(reply)]
        text = self.tokenizer.apply_chat_template(
            conversation, tokenize=False, add_generation_prompt=cue
        )
        if text.count(_MARK) != 1:
            raise ValueError(
                "this tokenizer's chat template does not write an assistant message's content "
                "as it is, so the dialogue env cannot append user turns after the agent's tokens"
            )
        return text.split(_MARK)[1]

    def _encode(self, text: str) -> list[int]:
        # The template writes every special token it wants (BOS included) into the text.
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]


class PlainTextChat:
    """Turns rendered as ``User: ...`` / ``Assistant:`` lines (see the module docstring)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer

    def opening_ids(self, opening: str) -> list[int]:
        return self.tokenizer(plain_opening(opening), add_special_tokens=True)["input_ids"]

    def user_turn_ids(self, reply: str, after_eos: bool, cue: bool) -> list[int]:
        text = plain_user_turn(reply, cue)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]


def chat_format(tokenizer: PreTrainedTokenizerBase) -> TemplateChat | PlainTextChat:
    """The tokenizer's chat template if it has one, else the plain-text fallback."""
    if getattr(tokenizer, "chat_template", None):
        return TemplateChat(tokenizer)
    return PlainTextChat(tokenizer)


class OpeningEncoder:
    """Token ids of openings within the prompt budget; openings from a list are encoded once.

    Unlike a single-turn prompt, an opening longer than ``max_prompt_tokens`` is refused with
    ``ValueError`` rather than cut: cutting would remove the start of the chat template.
    Dialogue envs with the same chat format and budget can share one encoder.
    """

    def __init__(self, chat: ChatFormat, max_prompt_tokens: int) -> None:
        self.chat = chat
        self.tokenizer = chat.tokenizer
        self.max_prompt_tokens = max_prompt_tokens
        self._listed_ids: dict[str, list[int]] = {}

    def encode_listed(self, opening: str) -> list[int]:
        """:meth:`encode` of an opening from the env's list, cached."""
        if opening not in self._listed_ids:
            self._listed_ids[opening] = self.encode(opening)
        return self._listed_ids[opening]

    def encode(self, opening: str) -> list[int]:
        """The opening's token ids in the chat format; ``ValueError`` if over the budget."""
        ids = self.chat.opening_ids(opening)
        if len(ids) > self.max_prompt_tokens:
            raise ValueError(
                f"the opening takes {len(ids)} tokens in the chat format, more than "
                f"max_prompt_tokens={self.max_prompt_tokens}: {opening!r:.80}"
            )
        return ids
