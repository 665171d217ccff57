"""Make the short HLS test stream that the demo and the browser tests play, with Debian's ffmpeg.

    python -m viewstats.player.sample_stream [MEDIA_DIR]   # data/media -> data/media/test/

The stream is generated, never downloaded: ffmpeg's `testsrc` picture and a 440 Hz tone, H.264
baseline + AAC in fragmented MP4 (fMP4 keeps every file a type Python's `mimetypes` knows, unlike
`.ts`, which it calls a Qt translation file), 2 s segments, a VOD playlist. Idempotent: an
existing stream is left alone.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

NAME = "test"
PLAYLIST = "index.m3u8"
SECONDS = 12
SEGMENT_SECONDS = 2
FPS = 25


class FfmpegMissing(RuntimeError):
    """ffmpeg is not installed; the message says how to get it."""


def playlist_path(media_dir: Path) -> Path:
    return media_dir / NAME / PLAYLIST


def _ffmpeg_command(out_dir: Path) -> list[str]:
    return [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
        "-f", "lavfi", "-i", f"testsrc=size=320x180:rate={FPS}:duration={SECONDS}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={SECONDS}",
        "-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p",
        # A key frame at every segment boundary, so each segment starts cleanly.
        "-g", str(FPS * SEGMENT_SECONDS), "-keyint_min", str(FPS * SEGMENT_SECONDS),
        "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "64k", "-ac", "2",
        "-f", "hls", "-hls_time", str(SEGMENT_SECONDS), "-hls_playlist_type", "vod",
        "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
        "-hls_segment_filename", str(out_dir / "seg%03d.m4s"),
        str(out_dir / PLAYLIST),
    ]


def make_sample_stream(media_dir: Path) -> Path:
    """The playlist of `<media_dir>/test/`, generated first if it is not there yet."""
    playlist = playlist_path(media_dir)
    if playlist.is_file():
        return playlist
    if shutil.which("ffmpeg") is None:
        raise FfmpegMissing("ffmpeg is not on PATH: install it (apt-get install -y ffmpeg)")
    media_dir.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed, so a player never sees half a stream.
    work = Path(tempfile.mkdtemp(prefix=f".{NAME}-", dir=media_dir))
    try:
        subprocess.run(_ffmpeg_command(work), check=True, timeout=300,
                       stdin=subprocess.DEVNULL)
        work.chmod(0o755)  # mkdtemp makes it private; the stream is for everyone
        try:
            work.rename(playlist.parent)
        except OSError:
            if not playlist.is_file():  # not a concurrent maker that won the race
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return playlist


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="make the HLS test stream with ffmpeg")
    parser.add_argument("media_dir", nargs="?", type=Path, default=Path("data/media"),
                        help="served as /media by `viewstats run` (default data/media)")
    args = parser.parse_args(argv)
    try:
        playlist = make_sample_stream(args.media_dir)
    except (FfmpegMissing, subprocess.CalledProcessError) as exc:
        print(f"sample_stream: {exc}", file=sys.stderr)
        return 1
    print(f"sample_stream: {playlist}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
