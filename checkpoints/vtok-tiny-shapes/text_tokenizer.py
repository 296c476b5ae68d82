"""A small byte-level BPE text tokenizer trained locally with `tokenizers`, with VTok's special tokens
and a ChatML-style chat template, for tiny models, tests and examples (no model hub needed)."""

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast


PAD_TOKEN, EOS_TOKEN, UNK_TOKEN = "<pad>", "<eos>", "<unk>"
VIDEO_TOKEN, VIDEO_START_TOKEN, VIDEO_END_TOKEN = "<video>", "<vid_start>", "<vid_end>"
IM_START_TOKEN = "<|im_start|>"
VIDEO_TOKENS = (VIDEO_TOKEN, VIDEO_START_TOKEN, VIDEO_END_TOKEN)
SPECIAL_TOKENS = [PAD_TOKEN, EOS_TOKEN, UNK_TOKEN, *VIDEO_TOKENS, IM_START_TOKEN]

# ChatML-like: `{"type": "video"}` items render as one `<video>` placeholder (the processor expands it),
# text items as their text. A turn ends with the eos token `<eos>`, so generation stops there.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'video' -%}{{ '<video>' }}"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<eos>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"
)


def train_text_tokenizer(
    texts: Iterable[str], vocab_size: int = 512, padding_side: str = "left"
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on `texts`.

    Args:
        texts (`Iterable[str]`):
            Training corpus. Any text can be encoded afterwards (byte-level: no unknown characters).
        vocab_size (`int`, *optional*, defaults to 512):
            Target vocabulary size, special tokens and the 256 byte symbols included.
        padding_side (`str`, *optional*, defaults to `"left"`):
            `"left"` suits batched generation.

    Returns:
        `PreTrainedTokenizerFast` with `<pad>`, `<eos>`, `<unk>`, `<video>`, `<vid_start>`, `<vid_end>`,
        `<|im_start|>` as special tokens (ids 0 to 6) and a chat template. A model needs
        `vocab_size >= len(tokenizer)`.
    """
    min_size = 256 + len(SPECIAL_TOKENS)
    if vocab_size < min_size:
        raise ValueError(f"`vocab_size` must be >= {min_size} (256 bytes + special tokens), got {vocab_size}.")
    tokenizer = Tokenizer(models.BPE(unk_token=UNK_TOKEN))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=UNK_TOKEN,
        extra_special_tokens={
            "video_token": VIDEO_TOKEN,
            "video_start_token": VIDEO_START_TOKEN,
            "video_end_token": VIDEO_END_TOKEN,
        },
        padding_side=padding_side,
        chat_template=CHAT_TEMPLATE,
    )


def add_video_tokens(tokenizer) -> dict[str, int]:
    """Give a pretrained LLM's tokenizer VTok's `<video>`, `<vid_start>` and `<vid_end>` as special tokens
    (appended after its vocabulary; tokens it already has are kept) and return their ids. The language
    model's embeddings must then grow to `len(tokenizer)`."""
    tokenizer.add_tokens([token for token in VIDEO_TOKENS if token not in tokenizer.get_vocab()], special_tokens=True)
    return {token: tokenizer.convert_tokens_to_ids(token) for token in VIDEO_TOKENS}


__all__ = ["train_text_tokenizer", "add_video_tokens"]
