"""Pet Care AI Consultation (chat completions), protocol-neutral."""

from services.chat.knowledge import KnowledgeBase
from services.chat.service import (
    MODELS,
    Answer,
    ChatLimits,
    ChatMessage,
    ChatRequest,
    ChatService,
    LanguageModel,
)

__all__ = [
    "MODELS",
    "Answer",
    "ChatLimits",
    "ChatMessage",
    "ChatRequest",
    "ChatService",
    "KnowledgeBase",
    "LanguageModel",
]
