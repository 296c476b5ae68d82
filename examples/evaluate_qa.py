"""Score a trained VTok model (or frames baseline) on a question-answering file: exact match overall and,
when the records have a `category`, per category.

The file is a JSON or JSONL file in the LLaVA-Video instruction format, or a `datasets` folder, as
`examples/train.py --eval-file` takes (docs/your_own_data.md). Every (question, answer) turn pair is one
question, asked after the conversation's earlier turns. Answers are generated greedily with room for the
longest reference answer, and compared after normalisation (case, spaces, a final period).

    python examples/evaluate_qa.py runs/vtok data/test.jsonl --output runs/vtok/eval_test.json

(Not `evaluate.py`: Python puts a script's folder first on its path, so that name would hide the
`evaluate` library from every script in examples/.)
"""

import argparse
import json
import sys
from pathlib import Path

from modeling_vtok.training_vtok import answer_questions, answer_token_budget, load_vtok_model, qa_accuracy
from processing_vtok.collator import VTokDataCollator
from processing_vtok.instruction_data import load_instruction_data


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="pipeline folder (model/, processor/) or a folder holding model and processor")
    parser.add_argument("data", help="LLaVA-Video JSON/JSONL file or datasets folder")
    parser.add_argument("--video-folder", default=None, help="folder the video paths start from (default: the file's folder)")
    sampling = parser.add_mutually_exclusive_group()
    sampling.add_argument("--num-frames", type=int, default=None, help="frames per video (default: the processor's, as trained)")
    sampling.add_argument("--fps", type=float, default=None, help="or frames per second of video (default: the processor's)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--output", default=None, help="also write the scores and every prediction to this JSON file")
    args = parser.parse_args(argv)

    model, processor = load_vtok_model(args.model)
    collator = VTokDataCollator(processor, num_frames=args.num_frames, fps=args.fps)
    given = args.num_frames is not None or args.fps is not None
    num_frames, fps = (args.num_frames, args.fps) if given else (processor.video_processor.num_frames, processor.video_processor.fps)
    examples = list(load_instruction_data(args.data, args.video_folder))
    max_new_tokens = answer_token_budget(processor.tokenizer, [example["answer"] for example in examples])
    predictions = answer_questions(model, collator, examples, args.batch_size, max_new_tokens)
    results = {
        "scores": qa_accuracy(predictions, examples),
        "num_questions": len(examples),
        "max_new_tokens": max_new_tokens,
        "video_tokenization": model.config.video_tokenization,
        "num_frames": num_frames,
        "fps": fps,
    }
    json.dump(results, sys.stdout, indent=2)
    if args.output:
        answers = [{"id": e.get("id"), "question": e["question"], "answer": e["answer"], "prediction": prediction}
                   for e, prediction in zip(examples, predictions)]  # fmt: skip
        Path(args.output).write_text(json.dumps({**results, "predictions": answers}, indent=2))
    return results


if __name__ == "__main__":
    main()
