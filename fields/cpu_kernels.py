"""C kernels for the CPU: compiled on first use with the system compiler, cached, called through ctypes.

Why not torch.utils.cpp_extension: a plain C file with OpenMP builds in about a second with the
system compiler and needs no PyTorch headers; a build at install time would need torch inside pip's
isolated build environment, which pulls the CUDA wheels. When no compiler is found, or the build
fails, `load_library` returns None (with one warning) and the caller's PyTorch path runs instead.
FIELDS_NO_KERNELS=1 turns every kernel off.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import torch


def cache_dir() -> Path:
    return Path(os.environ.get("FIELDS_CACHE", Path.home() / ".cache" / "fields"))


def _cpu() -> bytes:
    """What a build is specific to: the CPU's feature flags (the kernels use all of them), so a
    cache shared by several machines keeps one build per kind of CPU."""
    try:
        with open("/proc/cpuinfo", "rb") as f:
            return next((line for line in f if line.startswith((b"flags", b"Features"))), b"")
    except OSError:
        return platform.machine().encode() + platform.processor().encode()


def _build(source: Path, target: Path, flags: tuple[str, ...]) -> None:
    """-march=native (vector floor, exp and FMA in the loops), or the plain build where the compiler
    refuses it; `flags` added to both."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise OSError("no C compiler found")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        obj, out = Path(tmp) / "kernels.o", Path(tmp) / target.name
        args = ["-O3", *flags, "-fopenmp", "-fPIC", "-c", str(source), "-o", str(obj)]
        try:
            subprocess.run([cc, "-march=native", *args], check=True, capture_output=True, timeout=120)
        except subprocess.CalledProcessError:
            subprocess.run([cc, *args], check=True, capture_output=True, timeout=120)
        # linked apart, without the compile flags: a link with -ffast-math adds crtfastmath.o, whose
        # constructor would flush denormals to zero in the whole process (every PyTorch operation)
        subprocess.run([cc, "-shared", "-fopenmp", str(obj), "-o", str(out), "-lm"], check=True, capture_output=True,
                       timeout=120)
        os.replace(out, target)


# the argument types of a kernel's signature: pointer, 64- and 32-bit integers, float
VP, I64, I32, F32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_float


def load_library(source: Path, what: str, signatures: dict[str, list], flags: tuple[str, ...] = ()) -> ctypes.CDLL | None:
    """The compiled `source`, built into the cache the first time, its functions' argument types set
    from `signatures` (name -> ctypes types); None when unavailable (what: the kernels' name in the
    warning; flags: extra compiler flags). Callers cache the result (one load per process)."""
    if os.environ.get("FIELDS_NO_KERNELS"):
        return None
    digest = hashlib.sha256(source.read_bytes() + _cpu() + " ".join(("linked apart", *flags)).encode()).hexdigest()[:16]
    target = cache_dir() / f"{source.stem}_{digest}.so"
    try:
        if not target.is_file():
            _build(source, target, flags)
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError) as exc:
        warnings.warn(f"{what} CPU kernels unavailable ({exc}); using the slower pure-PyTorch path", stacklevel=3)
        return None
    for name, argtypes in signatures.items():
        getattr(lib, name).argtypes = argtypes
    return lib


def ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def as_c(t: torch.Tensor) -> torch.Tensor:
    """t as the contiguous float32 array a kernel reads. Callers bind it to a name until the call
    returns: the memory of an unnamed temporary is freed before ctypes passes its address on."""
    return t.detach().contiguous().float()
