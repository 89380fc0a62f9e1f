"""Reading and writing files safely: the one place where emolib touches files it did not make.

* **Writes** go to a uniquely named temporary file in the target's folder, then
  :func:`os.replace` puts it in place in one step (:func:`atomic_write`,
  :func:`write_text`, :func:`save_torch`, :func:`save_image`, :func:`copy_file`): a reader
  sees the old file or the new one, never half of one, and two processes writing the
  same name never share a temporary file.
* **Checkpoints** are read with ``torch.load(weights_only=True)`` only
  (:func:`load_torch`): a file that asks to run Python code is refused, with one line
  that names it (:class:`CheckpointError`).
* **Images** are opened with PIL's decompression-bomb guard turned into a clear error
  (:class:`ImageTooLargeError`; ``EMOLIB_MAX_IMAGE_PIXELS`` raises the limit), and
  16-bit and other high-bit-depth images are scaled to 8 bits instead of clipped
  (:func:`to_8bit`). :func:`load_image` is emolib's one image decoder for paths, PIL
  images, numpy arrays and torch tensors (upright RGB out, one-line errors that name the
  file: :class:`PipelineInputError`); :data:`IMAGE_EXTENSIONS` and :data:`VIDEO_EXTENSIONS`
  are emolib's one list of each, and :func:`list_images` lists a folder's images. This
  module never imports torch (the Jupyter server extension imports it): tensors are
  recognised by their type's module.
* **Caches** (decoded images, hand landmarks) live under :func:`cache_dir`, are named by
  :func:`files_key` (the settings and each file's name, size and modification time) and are
  written atomically (:func:`save_torch`, :func:`save_arrays`); a cache that cannot be read
  is rebuilt, never trusted.
* **Output folders** are locked while a run writes to them (:func:`lock_folder`): a
  second process gets :class:`FolderBusyError` naming the folder and the other
  process's id; the lock of a process that died is taken over.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "CheckpointError",
    "FolderBusyError",
    "ImageTooLargeError",
    "atomic_write",
    "write_text",
    "save_torch",
    "save_image",
    "copy_file",
    "save_arrays",
    "cache_dir",
    "files_key",
    "load_torch",
    "open_image",
    "to_8bit",
    "load_image",
    "list_images",
    "PipelineInputError",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "lock_folder",
    "LOCK_NAME",
    "MAX_PIXELS_ENV",
]

LOCK_NAME = ".emolib.lock"
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                              ".ppm", ".pgm", ".pbm", ".pnm", ".jfif"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"})
_OPEN_LOCK = threading.Lock()
MAX_PIXELS_ENV = "EMOLIB_MAX_IMAGE_PIXELS"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used (missing, unreadable, unsafe, or for another model)."""


class FolderBusyError(RuntimeError):
    """Another live process is writing to this output folder."""


class ImageTooLargeError(ValueError):
    """An image has more pixels than the decompression-bomb limit allows."""


class PipelineInputError(ValueError):
    """An input that cannot be read as an image: missing, empty or unreadable file, unsupported format, bad array."""


# --------------------------------------------------------------------------- atomic writes


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs) -> Iterator[Any]:
    """Open a unique temporary file beside ``path``; on success it replaces ``path`` in one step.

    On an exception (or Ctrl-C) the temporary file is removed and ``path`` is untouched.
    The parent folder is created if needed.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **open_kwargs) as fh:
            yield fh
            fh.flush()
            with contextlib.suppress(OSError):  # some mounted drives have no fsync
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once: os.umask can only be read by setting it, which is not thread-safe


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(path)


def save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` atomically; returns the path."""
    import torch

    with atomic_write(path, "wb") as fh:
        torch.save(obj, fh)
    return Path(path)


def save_image(image: Image.Image, path: str | os.PathLike, **save_kwargs) -> Path:
    """Save a PIL image atomically, its format taken from the file name's extension."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown image extension {path.suffix!r}")
    with atomic_write(path, "wb") as fh:
        image.save(fh, format=fmt, **save_kwargs)
    return path


def copy_file(src: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy ``src`` to ``dest`` atomically."""
    with open(src, "rb") as fin, atomic_write(dest, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return Path(dest)


# --------------------------------------------------------------------------- checkpoints


def save_arrays(arrays: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """``numpy.savez_compressed(**arrays)`` to ``path`` atomically; returns the path."""
    with atomic_write(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return Path(path)


# --------------------------------------------------------------------------- caches


def cache_dir() -> Path:
    """emolib's cache folder: ``$EMOLIB_CACHE``, else ``~/.cache/emolib`` (decoded images, landmarks)."""
    return Path(os.environ.get("EMOLIB_CACHE", Path.home() / ".cache" / "emolib")).expanduser()


def files_key(paths: Sequence[str | os.PathLike], settings: str = "") -> str:
    """A short name for a cache of ``paths`` made with ``settings``: it changes when a file is
    renamed, resized or rewritten (its size or modification time), or when the settings change."""
    h = hashlib.sha1(settings.encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def load_torch(path: str | os.PathLike, map_location: Any = "cpu", what: str = "checkpoint",
               numpy_arrays: bool = False) -> Any:
    """``torch.load(path, weights_only=True)`` with one-line errors that name the file.

    ``numpy_arrays=True`` also accepts plain numeric numpy arrays (PyTorch's documented
    allow-list for them), which training states written by earlier versions of emolib hold.

    Raises :class:`CheckpointError` when the file is missing, is not a PyTorch file, is
    truncated or corrupt, or holds Python objects other than tensors and plain data
    (which could run code when unpickled: it is refused, never loaded).
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist")
    allowed = []
    if numpy_arrays:
        allowed = [np.zeros(1).__reduce__()[0], np.ndarray, np.dtype,
                   *(type(np.dtype(t)) for t in (np.uint8, np.uint32, np.int64, np.float32, np.float64))]
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        found = re.search(r"Unsupported (?:global|class)\W+(?:GLOBAL\s+)?([\w.]+)", text)
        if found or "global" in text.lower():
            detail = f" ({found.group(1)})" if found else ""
            raise CheckpointError(
                f"{path}: refused: the {what} holds Python objects other than tensors and plain data{detail}, "
                f"which could run code when loaded; emolib loads weights only. Move the file away if you "
                f"did not make it."
            ) from None
        reason = re.search(r"WeightsUnpickler error:\s*(.+)", text, re.S)
        reason = reason.group(1).strip().splitlines()[0][:120] if reason else "not a pickle"
        raise CheckpointError(f"{path} is not a readable PyTorch {what} ({reason}); it may be truncated or "
                              f"corrupt: delete it, or move it away") from None
    except Exception as err:  # zip/stream errors, EOF, wrong magic number, ...
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(
            f"{path} is not a readable PyTorch {what} ({type(err).__name__}: {first}); it may be truncated or "
            f"corrupt: delete it, or move it away"
        ) from None


# --------------------------------------------------------------------------- images


def _pixel_limit() -> int | None:
    """The decompression-bomb limit: ``$EMOLIB_MAX_IMAGE_PIXELS`` when set (0 or 'none': no limit), else PIL's."""
    env = os.environ.get(MAX_PIXELS_ENV, "").strip().lower()
    if env:
        if env in ("0", "none"):
            Image.MAX_IMAGE_PIXELS = None
        else:
            try:
                Image.MAX_IMAGE_PIXELS = int(float(env))
            except ValueError:
                raise ValueError(f"{MAX_PIXELS_ENV}={env!r} is not a number of pixels") from None
    return Image.MAX_IMAGE_PIXELS


def open_image(path: str | os.PathLike) -> Image.Image:
    """``PIL.Image.open`` with pixels loaded, and images over the pixel limit refused with one line.

    PIL warns above ``Image.MAX_IMAGE_PIXELS`` and fails above twice that; both become
    :class:`ImageTooLargeError`. Raise the limit with ``EMOLIB_MAX_IMAGE_PIXELS=N``
    (``0``: no limit) for large images you trust. Other errors are PIL's.
    """
    limit = _pixel_limit()
    try:
        # PIL checks the size in open(), from the header. catch_warnings changes process-wide state,
        # so the threads that decode a dataset take turns here (the header only: decoding is not held up).
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        size = re.search(r"\((\d+) pixels\)", str(err))
        pixels = f"{int(size.group(1)):,} pixels" if size else "too many pixels"
        raise ImageTooLargeError(
            f"{path}: {pixels}, over the limit of {limit:,} (a guard against decompression bombs); "
            f"set {MAX_PIXELS_ENV}=N to allow larger images you trust"
        ) from None
    try:
        img.load()
    except BaseException:
        img.close()
        raise
    return img


def to_8bit(img: Image.Image) -> Image.Image:
    """An 8-bit image for any PIL image: 16-bit and 32-bit integer and float modes scaled, not clipped.

    ``I;16*`` (16-bit) images are divided by 257 (65535 -> 255); ``I`` (32-bit integer)
    and ``F`` (float) images by their bit depth's maximum: 255 when all values fit in 8
    bits, 65535 when they fit in 16 (a 16-bit PNG that PIL opened as ``I``), else their
    own maximum; floats in [0, 1] are multiplied by 255. Other modes are returned as they are.
    """
    if not (img.mode.startswith("I") or img.mode == "F"):
        return img
    arr = np.asarray(img).astype(np.float64)
    if img.mode.startswith("I;16"):
        top = 65535.0
    else:
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if lo < 0:
            arr = arr - lo
            hi -= lo
        if img.mode == "F" and hi <= 1.0:
            top = 1.0
        elif hi <= 255:
            top = 255.0
        elif hi <= 65535:
            top = 65535.0
        else:
            top = hi
    out = np.clip(np.rint(arr * (255.0 / top)), 0, 255).astype(np.uint8)
    return Image.fromarray(out, "L")


# --------------------------------------------------------------------------- image input


def _describe(image: Any) -> str:
    return str(image) if isinstance(image, (str, os.PathLike)) else f"<{type(image).__name__}>"


def _is_tensor(x: Any) -> bool:
    """A torch tensor, recognised without importing torch."""
    return type(x).__module__.startswith("torch") and hasattr(x, "detach") and hasattr(x, "numpy")


def _open_path(path: Path) -> Image.Image:
    if not path.exists():
        raise PipelineInputError(f"{path}: no such file")
    if path.is_dir():
        raise PipelineInputError(f"{path} is a folder; use EmotionPipeline.predict_many for folders")
    if path.stat().st_size == 0:
        raise PipelineInputError(f"{path}: the file is empty (0 bytes)")
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        raise PipelineInputError(f"{path} is a video; use emolib.video.process_video")
    try:
        img = open_image(path)
    except ImageTooLargeError as err:
        raise PipelineInputError(str(err)) from None
    except UnidentifiedImageError:
        raise PipelineInputError(
            f"{path}: unsupported or unrecognised image format (PIL reads JPEG, PNG, BMP, GIF, TIFF, WebP, ...)"
        ) from None
    except (OSError, SyntaxError, ValueError) as err:
        raise PipelineInputError(f"{path}: the image could not be decoded ({type(err).__name__}: {err})") from None
    return img


def _from_array(arr: Any, bgr: bool) -> Image.Image:
    if _is_tensor(arr):
        arr = arr.detach().cpu()
        if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
            arr = arr.permute(1, 2, 0)  # CHW -> HWC
        arr = arr.numpy()
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise PipelineInputError(
            f"an image array must be (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA; got shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise PipelineInputError(f"the image array is empty (shape {arr.shape})")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise PipelineInputError("the image array holds NaN or infinite values")
        scale = 255.0 if arr.max(initial=0) <= 1.0 else 1.0  # [0, 1] floats, else [0, 255]
        arr = np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8)
    elif arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() > 255:
            raise PipelineInputError(f"unsupported array dtype {arr.dtype} (give uint8 0..255 or floats 0..1)")
        arr = arr.astype(np.uint8)
    if bgr and arr.ndim == 3:
        arr = arr[:, :, [2, 1, 0, 3][: arr.shape[2]]]
    return Image.fromarray(np.ascontiguousarray(arr))


def load_image(image: Any, bgr: bool = False) -> Image.Image:
    """Any supported input as an upright RGB PIL image.

    ``image``: a path (str or Path), a PIL image, a numpy array ``(H, W)``, ``(H, W, 1|3|4)``
    (``uint8``, or floats in ``[0, 1]``) or a torch tensor (``CHW`` or ``HWC``). The EXIF
    orientation of files and PIL images is applied (:func:`PIL.ImageOps.exif_transpose`);
    transparency is composited on white; 16-bit images are scaled to 8 bits (:func:`to_8bit`).
    ``bgr=True`` swaps the channels of arrays (OpenCV's order); PIL images and files are
    always RGB. Raises :class:`PipelineInputError`, naming the file, for anything it cannot read.
    """
    if isinstance(image, (str, os.PathLike)):
        img = _open_path(Path(image))
    elif isinstance(image, Image.Image):
        img = image
    elif isinstance(image, np.ndarray) or _is_tensor(image):
        img = _from_array(image, bgr)
    else:
        raise PipelineInputError(
            f"unsupported input type {type(image).__name__}: give a path, a PIL image or a numpy array"
        )
    if img.width == 0 or img.height == 0:
        raise PipelineInputError(f"{_describe(image)}: zero-size image ({img.width}x{img.height})")
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not lose the photo
        pass
    img = to_8bit(img)  # 16-bit and float images scaled to 0..255, not clipped to white
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, rgba)
    if img.mode != "RGB":
        try:
            img = img.convert("RGB")
        except (ValueError, OSError) as err:
            raise PipelineInputError(f"{_describe(image)}: cannot convert mode {img.mode!r} to RGB ({err})") from None
    return img


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files (by extension, not hidden) directly in ``folder``, sorted; a file gives ``[file]``."""
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise PipelineInputError(f"{folder}: no such file or folder")
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and not p.is_dir())


# --------------------------------------------------------------------------- folder locks

_HELD: dict[str, list] = {}  # resolved folder -> [open lock file, depth] for this process


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    except OSError:
        return False
    return True


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _busy(folder: Path, pid: int | None) -> FolderBusyError:
    who = f"process {pid}" if pid else "another process"
    return FolderBusyError(
        f"{folder} is in use by {who} (lock file {folder / LOCK_NAME}); wait for it to finish, stop it, "
        f"or use another output folder"
    )


@contextlib.contextmanager
def lock_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold ``folder/.emolib.lock`` (with this process's id) while the block runs.

    Another process holding it raises :class:`FolderBusyError` at once (naming the folder
    and that process's id). The lock is an advisory ``flock`` on the file, so a process
    that dies releases it and the next run takes it over; where the file system has no
    ``flock`` the pid in the file decides (a dead pid is taken over). The file is removed
    when the block ends. Re-entrant within one process.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = str(folder.resolve())
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield folder
        finally:
            _HELD[key][1] -= 1
        return
    path = folder / LOCK_NAME
    while True:
        fh = open(path, "a+")
        try:
            _acquire(fh, folder, path)
            try:  # the holder before us may have removed the file between our open and our lock
                same = os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            fh.close()
            raise
        if same:
            break
        fh.close()
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    _HELD[key] = [fh, 0]
    try:
        yield folder
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            os.unlink(path)  # still locked: a process that opened it before retries on the new file
        fh.close()  # closing the file releases the flock


def _acquire(fh, folder: Path, path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: the pid in the file decides
        fcntl = None
    if fcntl is not None:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            raise _busy(folder, _read_pid(path)) from None
        except OSError as err:
            if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
    pid = _read_pid(path)
    if pid is not None and pid != os.getpid() and _pid_alive(pid):
        raise _busy(folder, pid)
