"""Batches video–text examples for `Trainer`: understanding (video + question -> answer) and
generation (caption -> video) examples in one batch, giving both terms of VTok's loss."""

import numpy as np
import torch
from transformers.utils import logging

logger = logging.get_logger(__name__)

TASKS = ("understanding", "generation")
# The columns VTokDataCollator reads; none is an argument of the model's `forward`.
EXAMPLE_COLUMNS = ("video", "video_tokens", "num_frames", "question", "answer", "context", "caption", "task")


class VTokDataCollator:
    """Turns examples into model inputs with `labels` and `videos_to_generate`.

    Each example is a dict with `video` (anything [`VTokVideoProcessor`] accepts) and
    - `question` and `answer` (task "understanding"). The chat is `user: <video> question`,
      `assistant: answer`; only the answer (and its end-of-turn) carries labels. An optional `context`
      lists earlier turns of a multi-turn chat, user first and alternating (`[question_1, answer_1, ...]`,
      as `load_instruction_data` writes them); the video then opens the first of them.
    - `caption` (task "generation"). The chat is `user: caption`, `assistant: <video>`; the LLM
      learns to open a video (`<vid_start>` is labelled) and to write its VTok tokens
      (`videos_to_generate` is True for it).
    An optional `task` column chooses when an example has both; without it, an example with a
    question and an answer is "understanding", one with only a caption "generation".

    Pre-tokenized examples carry `video_tokens` (the video's VTok tokens, `(num_video_tokens, token_dim)`, as
    `vtok tokenize-corpus` stores them) and `num_frames` (the frames they were computed from) in place of
    `video`. The batch then holds `video_embeds` and `video_lengths` instead of `pixel_values_videos`: the model
    skips the vision encoder and gives the same loss. A batch is all of one kind.

    Frames are sampled as the processor's config says (`processor.video_processor.num_frames` or `fps`, saved
    with it), so training, feature statistics and evaluation all sample alike. An explicit `num_frames` or
    `fps` wins, with a warning when the processor was saved with other sampling: VTok reads any frame
    count, but the model learned from (and its feature statistics were fitted on) the saved one.

    Use with `TrainingArguments(remove_unused_columns=False)` so these columns reach the collator.
    """

    def __init__(self, processor, num_frames: int | None = None, fps: float | None = None):
        self.processor = processor
        self.num_frames, self.fps = num_frames, fps
        disagreement = processor.video_processor.sampling_disagreement(num_frames, fps)
        if disagreement is not None:
            logger.warning(f"VTokDataCollator's {disagreement}. Leave `num_frames` and `fps` out to use the processor's.")

    @staticmethod
    def task(example: dict) -> str:
        """The example's `task`, or the one its columns imply."""
        task = example.get("task")
        if task is None:
            if "question" in example and "answer" in example:
                return "understanding"
            if "caption" in example:
                return "generation"
            raise ValueError(
                f"A training example needs `question` and `answer` (understanding) or `caption` (generation); "
                f"it has {sorted(example)}."
            )
        if task not in TASKS:
            raise ValueError(f"Unknown task {task!r} in a training example. Has to be one of {list(TASKS)}.")
        return task

    def prompt(self, example: dict) -> str:
        """The chat up to the assistant's turn, as text with `<video>` placeholders."""
        task = self.task(example)
        if task == "generation":
            return self.processor.text_to_video_prompt(example["caption"])
        turns = [*(example.get("context") or []), example["question"]]
        if len(turns) % 2 == 0:
            raise ValueError(
                f"`context` must hold whole earlier turn pairs, user first ([question, answer, ...]); got {len(turns) - 1} turns."
            )
        messages = [
            {"role": ("user", "assistant")[i % 2], "content": [{"type": "text", "text": text}]} for i, text in enumerate(turns)
        ]
        messages[0]["content"].insert(0, {"type": "video"})
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _model_inputs(self, texts: list[str], examples: list[dict]):
        pretokenized = ["video_tokens" in example for example in examples]
        if any(pretokenized):
            if not all(pretokenized):
                raise ValueError(
                    "A batch mixes examples with `video` (pixels) and with `video_tokens` (pre-tokenized); "
                    "give every example the same kind."
                )
            return self._pretokenized_inputs(texts, examples)
        sampling = {"num_frames": self.num_frames, "fps": self.fps}  # None: the processor's saved sampling
        return self.processor(
            text=texts, videos=[example["video"] for example in examples], padding=True, return_tensors="pt", **sampling
        )

    def _pretokenized_inputs(self, texts: list[str], examples: list[dict]):
        """Text with each `<video>` expanded for its stored tokens, and the tokens as `video_embeds`."""
        processor = self.processor
        tokens, lengths = [], []
        for example in examples:
            if "num_frames" not in example:
                raise ValueError("A pre-tokenized example needs `num_frames` (the frames its `video_tokens` come from) beside `video_tokens`.")
            video_tokens = torch.as_tensor(np.asarray(example["video_tokens"], dtype=np.float32))
            num_frames = int(example["num_frames"])
            expected = processor.num_stored_video_tokens(num_frames)
            if video_tokens.dim() != 2 or len(video_tokens) != expected:
                raise ValueError(
                    f"`video_tokens` of shape {tuple(video_tokens.shape)} do not fit num_frames={num_frames}: the "
                    f"processor expects ({expected}, token_dim) (processor.num_stored_video_tokens). Tokenize with the same model."
                )
            tokens.append(video_tokens)
            lengths.append(num_frames)
        expanded = [text.replace(processor.video_token, processor.video_placeholders(num_frames)) for text, num_frames in zip(texts, lengths)]
        batch = processor.tokenizer(expanded, padding=True, padding_side="left", return_tensors="pt")
        batch["video_embeds"] = torch.nn.utils.rnn.pad_sequence(tokens, batch_first=True)  # (num_videos, max_num_tokens, token_dim)
        batch["video_lengths"] = torch.tensor(lengths, dtype=torch.long)
        return batch

    def prompt_inputs(self, examples: list[dict]):
        """Understanding examples' chats up to the assistant's turn, with their videos: what `generate`
        continues to answer, sampled and templated as in training."""
        return self._model_inputs([self.prompt(example) for example in examples], examples)

    def __call__(self, examples: list[dict]) -> dict:
        if not any(column in example for example in examples for column in EXAMPLE_COLUMNS):
            raise ValueError(
                f"The examples reached VTokDataCollator without any of its columns ({', '.join(EXAMPLE_COLUMNS)}): they "
                f"have {sorted(examples[0])}. transformers.Trainer drops the dataset columns that are not arguments of the "
                "model's `forward` under its default TrainingArguments(remove_unused_columns=True): train with VTokTrainer, "
                "which keeps them for this collator, or pass remove_unused_columns=False."
            )
        tokenizer = self.processor.tokenizer
        end_of_turn = tokenizer.eos_token
        texts, answers = [], []
        for example in examples:
            prompt = self.prompt(example)
            if self.task(example) == "generation":
                texts.append(prompt + self.processor.video_token)
                answers.append(None)
            else:
                answer = f"{example['answer']}{end_of_turn}"
                texts.append(prompt + answer)
                answers.append(tokenizer(answer, add_special_tokens=False)["input_ids"])
        batch = self._model_inputs(texts, examples)

        # Left padding: an answer is the tail of its row.
        labels = torch.full_like(batch["input_ids"], -100)
        start_id = self.processor.tokenizer.convert_tokens_to_ids(self.processor.video_start_token)
        for row, answer in enumerate(answers):
            ids = batch["input_ids"][row]
            if answer is None:
                labels[row, ids == start_id] = start_id
                continue
            tail = ids[-len(answer) :].tolist()
            if tail != answer:
                raise ValueError(f"The answer's tokens {answer} are not the end of the tokenized chat {tail}; check the chat template.")
            labels[row, -len(answer) :] = ids[-len(answer) :]
        batch["labels"] = labels
        batch["videos_to_generate"] = torch.tensor([self.task(example) == "generation" for example in examples])
        return batch


__all__ = ["VTokDataCollator"]
