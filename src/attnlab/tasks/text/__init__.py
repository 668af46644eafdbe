"""Text classification: multi-head attention and capsules, on real Chinese reviews by default; the encoder
pretrained as a masked language model on the training texts (task ``text_mlm``)."""

from .data import TEXT_DATA, TextSplits
from .pretrain import MLMOptions, TextMLM
from .task import Text, TextCLI, TextOptions
from .tokens import TOKENIZERS, Vocabulary

__all__ = [
    "MLMOptions",
    "TEXT_DATA",
    "TOKENIZERS",
    "Text",
    "TextCLI",
    "TextMLM",
    "TextOptions",
    "TextSplits",
    "Vocabulary",
]
