"""Cost of sampling 16 frames from a long video: the library's loader against decoding every frame.

The clip is made at benchmark time with PyAV (H.264, libx264's `fast` preset, its default GOP; see
`make_clip`): a 10-minute 720p, 30 fps clip by default, a 33-second 160x96 one with `--quick`. Each
method runs once, in its own process, so that its peak resident memory is its own:

- `loader`: `processing_vtok.load_video(path, num_frames=16)`: demux the packets, then seek and decode
  only up to each sampled frame.
- `decode_every_frame`: decode every frame in order (threaded, like the loader) and convert only the
  same 16 to RGB: the cheapest way to get them without seeking.
- `decode_every_frame_held`: decode every frame to RGB and keep them all, then pick 16, as loaders
  that read a whole video (e.g. `torchvision.io.read_video`) do. Run only when the decoded video fits
  in a quarter of the available memory; otherwise its size is recorded as a lower bound on its memory.

Time is wall time and CPU time (all threads; the machine may be shared). Memory is reported as the peak resident set over what the process held once imports were done
(`peak_rss_mb`; the kernel's peak mark is reset then), and the absolute peak. Both baselines must return the loader's frames exactly (checked). Writes
benchmarks/results/video_io.json (`--quick`: video_io_quick.json unless `--output` is given).

    python benchmarks/video_io.py [--quick] [--minutes 10] [--output PATH]
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from tqdm import tqdm


RESULTS = Path(__file__).parent / "results"
NUM_FRAMES = 16
FPS = 30
SEGMENT_FRAMES = 500  # two libx264 default GOPs
METHODS = ("loader", "decode_every_frame", "decode_every_frame_held")


def encode_segment(path: str, width: int, height: int) -> None:
    """Encode `SEGMENT_FRAMES` frames of a moving scene (a panning smooth pattern and a bouncing square) with
    libx264's fast preset and its default GOP (a key frame every 250 frames, or at a scene cut)."""
    y, x = np.mgrid[0:height, 0 : width + 4 * FPS]
    background = np.stack(
        [128 + 100 * np.sin(x / 40) * np.cos(y / 50), 128 + 100 * np.sin(y / 30), 128 + 100 * np.cos((x + y) / 60)],
        axis=-1,
    ).astype(np.uint8)
    side = height // 4
    with av.open(path, mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "fast"}
        for t in tqdm(range(SEGMENT_FRAMES), desc="encoding a segment", unit="frame", mininterval=5):
            shift = (2 * t) % (4 * FPS)
            frame = background[:, shift : shift + width].copy()
            x0, y0 = (7 * t) % (width - side), (5 * t) % (height - side)
            frame[y0 : y0 + side, x0 : x0 + side] = (255 * (t % 2), 128, 255 - t % 256)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def make_clip(path: str, copies: int, width: int, height: int) -> dict:
    """A long H.264 MP4: `copies` copies of one encoded segment joined by stream copy (no re-encoding).

    Encoding 18,000 720p frames takes most of an hour on a shared 2-core machine; joining copies of a
    500-frame segment gives the same file structure in about a minute: each copy starts with a key frame
    and 500 is a multiple of libx264's default GOP of 250, so key frames fall every 250 frames, as in a
    continuous encode of a scene without cuts.
    """
    start = time.perf_counter()
    segment = path + ".segment.mp4"
    encode_segment(segment, width, height)
    with av.open(path, mode="w") as output:
        stream = None
        for copy in range(copies):
            with av.open(segment) as source:
                template = source.streams.video[0]
                stream = stream or output.add_stream_from_template(template)
                offset = round(Fraction(SEGMENT_FRAMES, FPS) / template.time_base)  # the segment's length in pts
                for packet in source.demux(template):
                    if packet.dts is None:  # the flush packet at the end
                        continue
                    packet.pts += copy * offset
                    packet.dts += copy * offset
                    packet.stream = stream
                    output.mux(packet)
    os.remove(segment)
    with av.open(path) as container:
        key_frames = sum(packet.is_keyframe for packet in container.demux(video=0) if packet.size)
    num_frames = copies * SEGMENT_FRAMES
    return {
        "codec": "h264 (libx264, preset fast, default GOP)",
        "container": "mp4",
        "made_as": f"{copies} copies of a {SEGMENT_FRAMES}-frame segment joined by stream copy",
        "seconds": round(num_frames / FPS, 1),
        "width": width,
        "height": height,
        "fps": FPS,
        "num_frames": num_frames,
        "key_frames": key_frames,
        "file_mb": round(os.path.getsize(path) / 2**20, 1),
        "make_seconds": round(time.perf_counter() - start, 1),
    }


def decode_every_frame(path: str, hold: bool) -> np.ndarray:
    """Decode every frame in order and return the 16 at `round(linspace(0, T - 1, 16))`, T from the header
    (what the loader picks on this constant-frame-rate clip). `hold` converts and keeps every frame first."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        wanted = set(np.round(np.linspace(0, stream.frames - 1, NUM_FRAMES)).astype(int).tolist())
        frames = []
        for position, frame in enumerate(container.decode(stream)):
            if hold or position in wanted:
                frames.append(frame.to_ndarray(format="rgb24"))
        if hold:
            frames = [frames[position] for position in sorted(wanted)]
    return np.stack(frames)


def memory_kb(field: str) -> int:
    """`VmRSS` (resident now) or `VmHWM` (peak resident) of this process, from /proc/self/status."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1])


def cpu_seconds() -> float:
    """CPU time of this process, all threads (user + system): unlike wall time, not stretched by other
    processes on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(method: str, path: str, frames_out: str) -> dict:
    """Run one method in this process. The kernel's peak-RSS mark is reset once imports are done, so the
    peak measured is the method's own."""
    if method == "loader":
        from processing_vtok.video_io import load_video  # torch and transformers: only this process needs them
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # resets VmHWM to the current resident set
    start_kb = memory_kb("VmRSS")
    start, cpu_start = time.perf_counter(), cpu_seconds()
    if method == "loader":
        frames, _ = load_video(path, num_frames=NUM_FRAMES)
    else:
        frames = decode_every_frame(path, hold=method == "decode_every_frame_held")
    wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
    peak_kb = memory_kb("VmHWM")
    np.save(frames_out, frames)
    return {
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "peak_rss_mb": round((peak_kb - start_kb) / 1024, 1),
        "peak_rss_mb_absolute": round(peak_kb / 1024, 1),
    }


def run_in_subprocess(method: str, path: str, frames_out: str) -> dict:
    command = [sys.executable, __file__, "--measure", method, "--clip", path, "--frames-out", frames_out]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def available_memory_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        fields = dict(line.split(":", 1) for line in meminfo)
    return int(fields["MemAvailable"].split()[0]) * 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a 33 s 160x96 clip (for the test)")
    parser.add_argument("--minutes", type=float, default=10.0, help="clip length of the full run")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--measure", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--clip", help=argparse.SUPPRESS)
    parser.add_argument("--frames-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.clip, args.frames_out)))
        return

    copies, width, height = (2, 160, 96) if args.quick else (round(args.minutes * 60 * FPS / SEGMENT_FRAMES), 1280, 720)
    output = args.output or RESULTS / ("video_io_quick.json" if args.quick else "video_io.json")
    with tempfile.TemporaryDirectory() as workdir:
        path = os.path.join(workdir, "clip.mp4")
        clip = make_clip(path, copies, width, height)
        decoded_bytes = clip["num_frames"] * width * height * 3
        results, reference = {}, None
        for method in METHODS:
            if method == "decode_every_frame_held" and decoded_bytes > available_memory_bytes() / 4:
                results[method] = {
                    "skipped": "the decoded video does not fit in a quarter of the available memory",
                    "peak_rss_mb_at_least": round(decoded_bytes / 2**20, 1),
                }
                continue
            frames_out = os.path.join(workdir, f"{method}.npy")
            print(f"measuring {method}", file=sys.stderr)
            results[method] = run_in_subprocess(method, path, frames_out)
            frames = np.load(frames_out)
            reference = frames if reference is None else reference
            results[method]["same_frames_as_loader"] = bool(np.array_equal(frames, reference))

    loader, every = results["loader"], results["decode_every_frame"]
    held = results["decode_every_frame_held"]
    held_mb = held.get("peak_rss_mb", held.get("peak_rss_mb_at_least"))
    summary = {
        "speedup_vs_decode_every_frame": round(every["wall_seconds"] / loader["wall_seconds"], 1),
        "cpu_time_ratio_vs_decode_every_frame": round(every["cpu_seconds"] / loader["cpu_seconds"], 1),
        "memory_ratio_vs_decode_every_frame": round(every["peak_rss_mb"] / loader["peak_rss_mb"], 1),
        "memory_ratio_vs_decode_every_frame_held": round(held_mb / loader["peak_rss_mb"], 1),
        "target": ">= 10x faster and >= 10x less memory than decoding everything",
    }
    report = {
        "benchmark": "sample 16 frames from a long H.264 video: processing_vtok.load_video vs decoding every frame",
        "quick": args.quick,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores (shared), PyAV {av.__version__}",
        "clip": clip,
        "results": results,
        "summary": summary,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
