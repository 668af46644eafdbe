"""Text classification: multi-head attention and capsules, on real Chinese reviews by default."""

from .data import TEXT_DATA, TextSplits
from .task import Text, TextCLI, TextOptions
from .tokens import TOKENIZERS, Vocabulary

__all__ = ["TEXT_DATA", "TOKENIZERS", "Text", "TextCLI", "TextOptions", "TextSplits", "Vocabulary"]
