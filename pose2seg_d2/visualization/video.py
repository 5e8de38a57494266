"""
Video files for demo.py: frames read one at a time (a frame that does not decode is an error
that says which), and the drawn frames written with a codec chosen by the file's extension.
"""
import math
import os

import cv2

__all__ = [
    "DEFAULT_FPS",
    "DEFAULT_VIDEO_EXTENSION",
    "VIDEO_CODECS",
    "FrameDecodeError",
    "VideoError",
    "VideoSink",
    "open_video",
    "read_frames",
    "video_output_path",
]

# output extension -> OpenCV fourcc: ".mp4" (MPEG-4 part 2, plays everywhere, lossy), ".avi"
# (Motion JPEG), ".mkv" (FFV1, lossless); each written and read back by opencv-python's FFmpeg
VIDEO_CODECS = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "FFV1"}
DEFAULT_VIDEO_EXTENSION = ".mp4"
# frame rate written when the source does not tell its own (webcams often do not)
DEFAULT_FPS = 30.0


class VideoError(Exception):
    """A video that cannot be opened, read or written; the message names the file."""


class FrameDecodeError(Exception):
    """Frame ``index`` (0-based) of a video could not be decoded."""

    def __init__(self, index, reason):
        super().__init__(f"frame {index} could not be decoded ({reason})")
        self.index = index


def open_video(path):
    """
    Returns:
        (cv2.VideoCapture, frames per second or None if the file does not say, number of
        frames or None if the file does not say)

    Raises:
        VideoError: no such file, or not a video OpenCV reads.
    """
    if not os.path.isfile(path):
        raise VideoError(f"--video-input {path}: no such file")
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise VideoError(f"--video-input {path}: cannot be read as a video (not a format or codec OpenCV reads)")
    return capture, _positive(capture.get(cv2.CAP_PROP_FPS)), _positive(capture.get(cv2.CAP_PROP_FRAME_COUNT))


def _positive(value):
    return value if value and math.isfinite(value) and value > 0 else None


def read_frames(capture, frame_count=None):
    """
    Yield the frames of ``capture``, (H, W, 3) uint8 BGR, until the video ends.

    Args:
        frame_count (int or None): the number of frames the file announces; a read that fails
            before it is a decode error, not the end.

    Raises:
        FrameDecodeError: a frame could not be decoded (the frames before it were yielded).
    """
    index = 0
    while True:
        try:
            ok, frame = capture.read()
        except cv2.error as e:
            raise FrameDecodeError(index, str(e).strip()) from e
        if not ok or frame is None:
            if frame_count is not None and index < frame_count:
                raise FrameDecodeError(index, f"the file announces {int(frame_count)} frames")
            return
        yield frame
        index += 1


def video_output_path(output, input_path):
    """
    The file a video is written to: ``output`` itself when it names a file with a known
    extension (VIDEO_CODECS), or, when it is a folder (existing, ending in a separator or
    without an extension), the input's stem + DEFAULT_VIDEO_EXTENSION in it.

    Raises:
        VideoError: a file name with another extension.
    """
    ext = os.path.splitext(output)[1].lower()
    if os.path.isdir(output) or output.endswith(os.sep) or not ext:
        return os.path.join(output, os.path.splitext(os.path.basename(input_path))[0] + DEFAULT_VIDEO_EXTENSION)
    if ext not in VIDEO_CODECS:
        raise VideoError(f"--output {output}: a video is written as {', '.join(VIDEO_CODECS)}, not {ext}")
    return output


class VideoSink:
    """
    Writes frames to ``path`` at ``fps``; the file is opened at the first frame, with that
    frame's size, so that nothing is created for a video without frames.
    """

    def __init__(self, path, fps):
        self.path, self.fps = path, fps
        self.frames_written = 0
        self._writer = None

    def write(self, frame):
        """Args: frame (ndarray): (H, W, 3) uint8 BGR, every frame of one size."""
        if self._writer is None:
            folder = os.path.dirname(self.path)
            if folder:
                os.makedirs(folder, exist_ok=True)
            fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[os.path.splitext(self.path)[1].lower()])
            self._writer = cv2.VideoWriter(self.path, fourcc, self.fps, (frame.shape[1], frame.shape[0]))
            if not self._writer.isOpened():
                raise VideoError(f"--output {self.path}: OpenCV cannot write this video file")
        self._writer.write(frame)
        self.frames_written += 1

    def close(self):
        if self._writer is not None:
            self._writer.release()
            self._writer = None
