"""Face counting with libfacedetection (`yuface`: BSD-3, the CNN weights are compiled in), run by
the library itself or, the same network and weights, by ONNX Runtime (``models.offline.yunet_onnx``)."""
from __future__ import annotations

import ctypes
import threading
from functools import lru_cache

import numpy as np
from PIL import Image

from models.versions import package_dir


# Long side of the copy faces are looked for in. yuface's time grows with the pixels (one
# core: about 37 ms at 640x457, 17 ms at 480x343); on the dev sets (Concadia's 256 px images
# are not resized) the face count changed on 3 of the 203 images where no person is detected,
# the only ones where the count reaches the draft.
MAX_SIDE = 480


class FaceCounter:
    def __init__(self, min_score: float = 0.75, *, max_side: int | None = MAX_SIDE, engine: str = "library",
                 threads: int | None = None) -> None:
        """``max_side``: larger images are searched on a copy with this long side (None: as they are).
        ``engine``: "library" (yuface's own C++) or "onnx" (its network and weights on ONNX Runtime,
        ``models.offline.yunet_onnx``: the same rows, about 3x faster on one core of an AVX2 CPU).
        ``threads``: ONNX Runtime threads per call (None: its default)."""
        import yuface  # noqa: F401  (loads libfacedetection and its libgomp; fails here if missing)

        if engine not in ("library", "onnx"):
            raise ValueError(f"unknown face engine {engine!r}")
        if engine == "onnx":
            from models.offline.yunet_onnx import CONFIDENCE_THRESHOLD, OnnxYuNet

            network = OnnxYuNet(_library(), threads)
            # rows below the threshold are not decoded: they cannot change the ones above it
            floor = max(min_score, CONFIDENCE_THRESHOLD)
            self._detect = lambda bgr: network.detect(bgr, floor)
        else:
            self._detect = gil_free_detect() or _yuface_detect
        self.min_score = min_score
        self.max_side = max_side

    def faces(self, image: Image.Image, rgb: np.ndarray | None = None) -> list[tuple[float, float]]:
        """(score, share of the image area) for each face found. ``rgb``: the image as an
        array, when the caller has it already."""
        rgb = np.asarray(image) if rgb is None else rgb
        h, w = rgb.shape[:2]
        if self.max_side and max(h, w) > self.max_side:
            import cv2

            ratio = self.max_side / max(h, w)
            rgb = cv2.resize(rgb, (max(1, round(w * ratio)), max(1, round(h * ratio))), interpolation=cv2.INTER_AREA)
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        found = self._detect(bgr)
        # yuface.detect's own filter: confidence is a 0-100 integer, kept when above the threshold
        found = found[found[:, 0] > self.min_score * 100]
        confs, boxes = found[:, 0], found[:, 1:5]
        area = float(rgb.shape[0] * rgb.shape[1])
        return [(float(c) / 100.0, float(b[2]) * float(b[3]) / area) for c, b in zip(confs, boxes)]


def _yuface_detect(bgr: np.ndarray) -> np.ndarray:
    """yuface's own binding: rows of (confidence, x, y, w, h, 10 landmark values, 1 more)."""
    from yuface.yuface import detect

    return detect(bgr)


_FIRST_CALL = threading.Lock()


def _library() -> ctypes.CDLL:
    """yuface's libfacedetection (the one its binding loaded)."""
    folder = package_dir("yuface")
    if folder is None:
        raise RuntimeError("yuface is not installed; run scripts/setup.sh")
    return ctypes.CDLL(str(next(folder.glob("libfacedetection.so*"))))


@lru_cache(maxsize=1)
def gil_free_detect():
    """yuface's network (``facedetect_cnn`` in its libfacedetection) called through ctypes, or
    None where that library or function is not found.

    yuface's binding holds the GIL for the whole search (20-35 ms for a 480 px photo), so
    the other worker and the server's event loop wait for any Python step meanwhile; ctypes
    lets go of it during the call. Same function, same rows. The library fills its weights
    into globals on its first call, so that call is made once, under a lock, here."""
    try:
        search = _library()._Z14facedetect_cnnPhS_iii  # facedetect_cnn(uchar* result, uchar* bgr, int w, int h, int step)
    except (StopIteration, OSError, AttributeError, RuntimeError):
        return None
    search.restype = ctypes.POINTER(ctypes.c_int)
    search.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]

    def detect(bgr: np.ndarray) -> np.ndarray:
        if bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3 or not bgr.flags.c_contiguous:
            raise ValueError("a contiguous BGR uint8 image is needed")
        # the result layout of libfacedetection (and yuface's buffer size): an int count, then
        # 16 shorts per face, at most 1024 faces
        result = ctypes.create_string_buffer(0x9000)
        height, width = bgr.shape[:2]
        count = search(ctypes.addressof(result), bgr.ctypes.data, width, height, width * 3)
        n = count[0] if count else 0
        return np.frombuffer(result, dtype=np.int16, count=16 * n, offset=4).reshape(n, 16).copy()

    with _FIRST_CALL:
        detect(np.zeros((32, 32, 3), np.uint8))
    return detect


def single_threaded_openmp() -> None:
    """One OpenMP thread for yuface's calls from the calling thread.

    yuface brings its own copy of libgomp, but its library binds to whichever
    ``libgomp.so.1`` the process loaded first: torch's, when torch was imported before
    (as in the service). Either copy otherwise starts a team of ``OMP_NUM_THREADS`` threads
    for every calling thread: with one image per core in flight that is twice as many
    busy threads as cores, spinning at every barrier (measured under load: 198 ms of CPU
    per face search against 38 ms on one thread). So every copy of libgomp in the process
    is told, and yuface's own is loaded to be told too. The setting is per thread
    (OpenMP's nthreads-var), so each of the drafter's worker threads calls this once,
    after the face counter is loaded.
    """
    import ctypes

    for lib in libgomp_copies():
        ctypes.CDLL(lib).omp_set_num_threads(1)


def libgomp_copies() -> list[str]:
    """Paths of the libgomp copies loaded in this process, and yuface's own."""
    paths = set()
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "/libgomp" in line}
    except OSError:  # not on Linux
        pass
    folder = package_dir("yuface")
    if folder is not None:
        paths |= {str(p) for p in (folder.parent / "yuface.libs").glob("libgomp*.so*")}
    return sorted(paths)
