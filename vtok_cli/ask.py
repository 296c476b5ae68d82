"""`vtok ask VIDEO "question"`: the model's answer about a video (greedy decoding)."""

from pathlib import Path

from .checkpoint import add_model_argument, add_sampling_arguments, load_model_and_processor


def add_parser(subparsers, name: str) -> None:
    parser = subparsers.add_parser(name, help="ask a question about a video", description="Answer a question about a video with a VTok model.")
    parser.add_argument("video", metavar="VIDEO", help="a video file")
    parser.add_argument("question", help="the question, in quotes")
    add_model_argument(parser)
    add_sampling_arguments(parser)
    parser.add_argument("--max-new-tokens", type=int, default=32, metavar="N", help="longest answer in tokens (default: %(default)s)")


def run(args) -> None:
    import torch

    if not Path(args.video).is_file():
        raise FileNotFoundError(f"{args.video}: no such file.")
    if not args.question.strip():
        raise ValueError("The question is empty.")
    model, processor = load_model_and_processor(args.model)
    messages = [{"role": "user", "content": [{"type": "video", "video": args.video}, {"type": "text", "text": args.question}]}]
    sampling = {key: value for key, value in (("num_frames", args.num_frames), ("fps", args.fps)) if value is not None}
    inputs = processor.apply_chat_template(
        messages, tokenize=True, return_dict=True, add_generation_prompt=True, return_tensors="pt", **sampling
    )
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=args.max_new_tokens, do_sample=False)
    print(processor.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)[0].strip())
