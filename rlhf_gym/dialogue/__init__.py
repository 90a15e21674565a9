"""Dialogues: conversations in TRL's message format, user simulators and their registry, and the
scripted games of the dialogue tasks (guess the number, twenty questions).

Pure Python, no model code: the dialogue env (``rlhf_gym.envs.dialogue``) turns conversations
into tokens, and reward predictors read them through ``rlhf_gym.rewards``.
"""

from rlhf_gym.dialogue.conversation import (
    FinalReply,
    Message,
    preference_record,
    reward_texts,
    transcript,
)
from rlhf_gym.dialogue.simulators import (
    ENTRY_POINT_GROUP,
    ConversationStarter,
    Reply,
    UserSimulator,
    available_simulators,
    begin_conversation,
    make_user_simulator,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "ConversationStarter",
    "FinalReply",
    "Message",
    "Reply",
    "UserSimulator",
    "available_simulators",
    "begin_conversation",
    "make_user_simulator",
    "preference_record",
    "reward_texts",
    "transcript",
]
