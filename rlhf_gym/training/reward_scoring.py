"""How the reward trainer scores texts: which parameters train, and what runs once per text.

Three strategies, one per :class:`~rlhf_gym.training.RewardConfig` setting:

- :class:`WholeModelScorer` (the default): every forward runs the whole model, and every
  trainable parameter trains.
- :class:`HeadOnlyScorer` (``freeze_trunk=True``): the trunk's pooled feature of each text is
  computed once; only the linear head trains.
- :class:`TopLayersScorer` (``trainable_layers=N``): the output of the frozen lower layers is
  computed once per text; the top N layers, what follows them (a decoder's final norm, an
  encoder's pooler) and the head train.

All three score a text as ``LearnedRewardModel`` does (a decoder's head on the final hidden
state of the last real token, an encoder's head on its own pooling), so the trained model is
scored the same way after training.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from rlhf_gym.models import layer_stack, transformer_layers
from rlhf_gym.rewards.learned import (
    encode_texts,
    eval_mode,
    head_scores,
    pooled_features,
    pools_last_token,
    reward_head,
    sequence_scores,
)
from rlhf_gym.training.reward_config import RewardConfig


class RewardScorer:
    """Scores texts, ``scorer(texts) -> (N,)``, with gradients into the parameters that train.

    Construction sets ``requires_grad`` on ``model``'s parameters (the model is trained in
    place); :meth:`prepare` does, once per text, the work that does not train.
    """

    def __init__(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, args: RewardConfig
    ) -> None:
        self.model, self.tokenizer, self.args = model, tokenizer, args
        self._set_trainable()

    def _set_trainable(self) -> None:
        """Choose the parameters that train (default: those the model already trains)."""

    def prepare(self, texts: Sequence[str]) -> None:
        """Do the frozen part of scoring ``texts`` now, before training (default: none)."""

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        raise NotImplementedError

    def encode(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and mask (B, T), cut to ``max_length`` as the saved predictor cuts them."""
        return encode_texts(
            self.tokenizer, texts, self.args.max_length, self.model.device,
            keep_first=not pools_last_token(self.model),
        )  # fmt: skip


class WholeModelScorer(RewardScorer):
    """Runs the whole model on every call; gradients reach every trainable parameter."""

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        ids, mask = self.encode(texts)
        return sequence_scores(self.model, ids, mask)  # (N,)


class _CachedStates(nn.Module):
    """Stands in for an encoder's embeddings module: hands ``inputs_embeds`` (the cached
    output of the frozen layers) on unchanged."""

    def forward(self, *args: object, inputs_embeds: torch.Tensor, **kwargs: object) -> torch.Tensor:
        return inputs_embeds


class CachedScorer(RewardScorer):
    """Runs the frozen part of the model once per distinct text and keeps its output.

    :meth:`prepare` encodes the texts not seen yet, shortest first (little padding), in chunks
    of ``eval_batch_size``; a call prepares any text it has not seen, then scores from the cache.
    """

    def __init__(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, args: RewardConfig
    ) -> None:
        super().__init__(model, tokenizer, args)
        self.index: dict[str, int] = {}  # text -> its row in ``rows``
        self.rows: list[torch.Tensor] = []  # per text: the frozen part's output

    def prepare(self, texts: Sequence[str]) -> None:
        # shortest first (less padding), ties by text: the same chunks under any hash seed
        unique = sorted(set(texts), key=lambda text: (len(text), text))
        new = [text for text in unique if text not in self.index]
        size = self.args.eval_batch_size
        for start in range(0, len(new), size):
            chunk = new[start : start + size]
            ids, mask = self.encode(chunk)
            self.index.update((text, len(self.rows) + i) for i, text in enumerate(chunk))
            with torch.no_grad():
                self.rows += self._frozen_part(ids, mask)
            self._check_chunk(chunk, ids, mask)

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        self.prepare(texts)
        return self._score([self.rows[self.index[text]] for text in texts])

    def _frozen_part(self, ids: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """The frozen part's output of each row of a chunk, (B, T) -> B tensors."""
        raise NotImplementedError

    def _score(self, rows: list[torch.Tensor]) -> torch.Tensor:
        """Scores (N,) from the cached outputs of N texts, through the trained part."""
        raise NotImplementedError

    def _check_chunk(self, texts: list[str], ids: torch.Tensor, mask: torch.Tensor) -> None:
        """Called after each chunk is cached (default: nothing to check)."""


class HeadOnlyScorer(CachedScorer):
    """The trunk is frozen: its pooled feature of each text is cached; the head alone trains."""

    def _set_trainable(self) -> None:
        self.model.requires_grad_(False)
        reward_head(self.model).requires_grad_(True)

    def _frozen_part(self, ids: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        with eval_mode(self.model):  # a cached feature must not carry one draw of dropout
            return list(pooled_features(self.model, ids, mask).float())  # B x (H,)

    def _score(self, rows: list[torch.Tensor]) -> torch.Tensor:
        return head_scores(reward_head(self.model), torch.stack(rows))  # (N, H) -> (N,)


class TopLayersScorer(CachedScorer):
    """The layers below the top ``trainable_layers`` are frozen and their output is cached;
    each call runs the top layers and whatever follows them (a decoder's final norm, an
    encoder's pooler) and the head on it.

    The model runs from the cache with its layer stack cut to the top layers and, in an encoder,
    its embeddings module (which would add position embeddings again) handing the cached states
    on unchanged. The first chunk is also scored by the whole model: an architecture that cannot
    run this way is refused instead of trained wrongly.
    """

    _checked = False  # whether a chunk was scored both ways

    def _set_trainable(self) -> None:
        layers, top = transformer_layers(self.model), self.args.trainable_layers
        if top is None:
            raise ValueError("TopLayersScorer needs a config with trainable_layers set")
        if top > len(layers):
            raise ValueError(
                f"trainable_layers={top} but the model has {len(layers)} transformer layers"
            )
        self.cut = len(layers) - top  # index of the lowest trained layer
        self.stack_owner, self.stack_name = layer_stack(self.model)
        # what runs before layer ``cut``: an encoder's embeddings module, a decoder's token table
        self.embeddings = getattr(self.model.base_model, "embeddings", None)
        self.model.requires_grad_(False)
        self.model.base_model.requires_grad_(True)  # the top layers and what follows them
        (self.embeddings or self.model.get_input_embeddings()).requires_grad_(False)
        layers[: self.cut].requires_grad_(False)
        reward_head(self.model).requires_grad_(True)

    def _frozen_part(self, ids: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        out = self.model.base_model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        lower = out.hidden_states[self.cut]  # (B, T, H): the input of layer ``cut``
        lengths = mask.sum(-1).tolist()
        return [row[:n] for row, n in zip(lower, lengths, strict=True)]  # B x (T_i, H)

    def _score(self, rows: list[torch.Tensor]) -> torch.Tensor:
        lengths = torch.tensor([len(row) for row in rows], device=rows[0].device)
        hidden = nn.utils.rnn.pad_sequence(rows, batch_first=True)  # (N, T, H), right-padded
        mask = (torch.arange(hidden.shape[1], device=hidden.device) < lengths[:, None]).long()
        with self._top_layers_only():
            features = pooled_features(self.model, None, mask, inputs_embeds=hidden)  # (N, H)
        return head_scores(reward_head(self.model), features)

    @contextmanager
    def _top_layers_only(self) -> Iterator[None]:
        """The model's layer stack cut to the top layers, and an encoder's embeddings a
        passthrough, for the duration."""
        full_stack = getattr(self.stack_owner, self.stack_name)
        setattr(self.stack_owner, self.stack_name, full_stack[self.cut :])
        if self.embeddings is not None:
            self.model.base_model.embeddings = _CachedStates()
        try:
            yield
        finally:
            setattr(self.stack_owner, self.stack_name, full_stack)
            if self.embeddings is not None:
                self.model.base_model.embeddings = self.embeddings

    def _check_chunk(self, texts: list[str], ids: torch.Tensor, mask: torch.Tensor) -> None:
        """Cached lower layers + top layers must score the first chunk as the whole model does."""
        if self._checked:
            return
        with torch.no_grad(), eval_mode(self.model):  # the same dropout draw both ways: none
            full = sequence_scores(self.model, ids, mask)
            split = self(texts)
        if not torch.allclose(full, split, atol=1e-4, rtol=1e-4):
            raise ValueError(
                f"trainable_layers is not supported for {type(self.model).__name__}: its trunk "
                "scores differently when run from cached layer outputs (inputs_embeds); use "
                "full fine-tuning (trainable_layers=None) or freeze_trunk=True"
            )
        self._checked = True


def make_scorer(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, args: RewardConfig
) -> RewardScorer:
    """The scorer that ``args`` asks for (``freeze_trunk``, ``trainable_layers`` or neither)."""
    if args.freeze_trunk:
        return HeadOnlyScorer(model, tokenizer, args)
    if args.trainable_layers is not None:
        return TopLayersScorer(model, tokenizer, args)
    return WholeModelScorer(model, tokenizer, args)
