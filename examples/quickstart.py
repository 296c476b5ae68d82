"""VTok quickstart on the bundled default model (checkpoints/vtok-tiny-shapes), no hub needed.

1. understanding: write a sample clip to MP4, decode it with PyAV through the processor and ask
   the model about it;
2. generation: render a clip from a text prompt, saved as MP4 and GIF;
3. cost: the number of LLM tokens VTok spends on the clip against naive frame sampling.

    python examples/quickstart.py [--checkpoint checkpoints/vtok-tiny-shapes] [--output-dir outputs]
"""

import argparse
from pathlib import Path

import torch
from diffusers.utils import export_to_gif, export_to_video
from transformers import AutoModelForImageTextToText, AutoProcessor

from modeling_vtok import VTokTextToVideoPipeline  # importing modeling_vtok registers the "vtok" Auto classes
from processing_vtok import write_video
from vtok_shapes import load_vtok_shapes

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "vtok-tiny-shapes"
# (question, the clip's column holding the true answer), in the dataset's exact wording
QUESTIONS = [
    ("which way does the {color} {shape} move?", "direction"),
    ("what color is the {shape}?", "color"),
    ("how many shapes are there?", "num_shapes"),
]
NUMBER_WORDS = {1: "one", 2: "two", 3: "three"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--output-dir", default="outputs")
    parser.add_argument("--prompt", default="a red circle moving right")
    parser.add_argument("--num-frames", type=int, default=8)
    args = parser.parse_args()
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = Path(args.checkpoint)

    model = AutoModelForImageTextToText.from_pretrained(checkpoint / "model").eval()
    processor = AutoProcessor.from_pretrained(checkpoint / "processor")

    # 1. Understanding: a held-out test clip, through a real MP4 file.
    clip = load_vtok_shapes("test", num_samples=8)[1]
    video_path = write_video(output_dir / "sample_clip.mp4", clip["video"], fps=4)
    print(f"Sample clip: {clip['caption']!r} -> {video_path}")
    for template, truth_column in QUESTIONS:
        question = template.format(color=clip["color"], shape=clip["shape"])
        truth = NUMBER_WORDS.get(clip[truth_column], clip[truth_column])
        messages = [{"role": "user", "content": [{"type": "video", "video": str(video_path)}, {"type": "text", "text": question}]}]
        inputs = processor.apply_chat_template(
            messages, tokenize=True, return_dict=True, add_generation_prompt=True, return_tensors="pt", num_frames=args.num_frames
        )
        with torch.no_grad():
            output = model.generate(**inputs, max_new_tokens=4, do_sample=False)
        answer = processor.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)[0].strip()
        print(f"  Q: {question:<40} A: {answer:<8} (truth: {truth})")

    # 2. Generation: text -> VTok tokens -> diffusion decoder -> frames.
    pipeline = VTokTextToVideoPipeline.from_pretrained(checkpoint)
    generator = torch.Generator().manual_seed(0)
    frames = pipeline(args.prompt, num_frames=args.num_frames, generator=generator, output_type="pil").frames[0]
    mp4 = export_to_video(frames, str(output_dir / "generated.mp4"), fps=4)
    gif = export_to_gif(frames, str(output_dir / "generated.gif"), fps=4)
    print(f"Generated {args.prompt!r}: {len(frames)} frames of {frames[0].size[0]}x{frames[0].size[1]} -> {mp4}, {gif}")

    # 3. Cost: VTok against naive frame sampling (S tokens for every frame).
    key_tokens = processor.num_video_tokens(1)
    for num_frames in (args.num_frames, 32, 128):
        vtok = processor.num_video_tokens(num_frames)
        print(f"  {num_frames:>4} frames: VTok {vtok:>5} LLM tokens, frame sampling {key_tokens * num_frames:>6} ({key_tokens * num_frames / vtok:.1f}x)")


if __name__ == "__main__":
    main()
