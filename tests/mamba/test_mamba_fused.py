"""The fused C++ selective scan (mlreads/mamba/csrc) against the reference loop: values, last state and every
gradient, in float64 (the scalar path) and float32 (the vector paths), bfloat16/float16 inputs, gradcheck,
thread-count independence, and the fallback to the chunked path when the extension is off or cannot be built."""

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mlreads.mamba import csrc
from mlreads.mamba.scan import FusedScan, selective_scan

sys.path.insert(0, str(Path(__file__).parent))
from test_mamba_scan import OPTIONAL, REQUIRED, _inputs, _run  # noqa: E402

SRC = str(Path(__file__).resolve().parents[2] / "src")
needs_ext = pytest.mark.skipif(not csrc.available(), reason="the fused extension is not built here")
BC_MODES = st.sampled_from(["shared", "grouped", "const"])


def test_fused_is_built_where_a_compiler_exists():
    """Where g++ and ninja exist and the switch is off, the kernel must build: otherwise every 'fused' test below
    would silently test the chunked fallback."""
    if csrc.disabled() or shutil.which(os.environ.get("CXX", "c++")) is None or shutil.which("ninja") is None:
        pytest.skip("no compiler/ninja, or MLREADS_NO_EXT set")
    assert csrc.available()


def _compare(inp, use, softplus, chunk, tol):
    y_r, last_r, g_r = _run("ref", {k: v.double() for k, v in inp.items()}, use, softplus, chunk)
    y, last, grads = _run("fused", inp, use, softplus, chunk)
    torch.testing.assert_close(y.double(), y_r, **tol)
    torch.testing.assert_close(last.double(), last_r, **tol)
    for k in use:
        torch.testing.assert_close(grads[k].double(), g_r[k], **tol, msg=lambda m, k=k: f"grad {k}: {m}")


@needs_ext
@settings(max_examples=60, deadline=None)
@given(batch=st.integers(1, 2), groups=st.integers(1, 3), per_group=st.integers(1, 2), n=st.integers(1, 4),
       length=st.integers(1, 19), chunk=st.integers(1, 8), flags=st.lists(st.booleans(), min_size=4, max_size=4),
       softplus=st.booleans(), b_mode=BC_MODES, c_mode=BC_MODES, seed=st.integers(0, 10_000))
def test_fused_float64_matches_reference(batch, groups, per_group, n, length, chunk, flags, softplus, b_mode, c_mode,
                                         seed):
    inp = _inputs(batch, groups * per_group, n, length, seed, b_mode=b_mode, c_mode=c_mode, groups=groups)
    use = REQUIRED + tuple(k for k, f in zip(OPTIONAL, flags) if f)
    _compare(inp, use, softplus, chunk, dict(rtol=1e-9, atol=1e-10))


@needs_ext
@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 2), groups=st.sampled_from([1, 2]), n=st.sampled_from([8, 16, 24, 32, 5]),
       length=st.integers(1, 70), chunk=st.sampled_from([1, 7, 33, 64]), b_mode=BC_MODES, c_mode=BC_MODES,
       softplus=st.booleans(), seed=st.integers(0, 10_000))
def test_fused_float32_vector_path_matches_reference(batch, groups, n, length, chunk, b_mode, c_mode, softplus, seed):
    """N a multiple of 16 (with AVX-512) or of 8 runs the 16- or 8-float vector code (its own exp, log and
    softplus; N = 8, 16, 32 the register-resident paths whose horizontal sums are batched over blocks of 8 or 16
    steps: lengths and chunks >= 16 reach the blocks in forward and backward, partial blocks the per-step sums);
    others the scalar code."""
    inp = {k: v.float() for k, v in _inputs(batch, 2 * groups, n, length, seed, b_mode=b_mode, c_mode=c_mode,
                                             groups=groups).items()}
    if not softplus:  # Δ must be a step size (>= 0): a negative one grows the state, and float32 error with it
        inp["delta"], inp["delta_bias"] = inp["delta"].abs(), inp["delta_bias"].abs()
    else:
        inp["delta"][..., ::5] = 30.0  # past softplus' threshold (20): the identity, derivative 1
        inp["delta"][..., 1::7] = -40.0  # exp(Δ) underflows inside softplus
    _compare(inp, REQUIRED + OPTIONAL, softplus, chunk, dict(rtol=2e-4, atol=2e-4))


@needs_ext
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_inputs_accumulate_in_float32(dtype):
    """bfloat16/float16 u, Δ, z, B, C stay in their dtype in memory; the kernel accumulates in float32, so it equals
    the float32 reference on the same (rounded) inputs to float32 accuracy, not to the dtype's."""
    inp = _inputs(2, 4, 16, 40, seed=3)
    x = {k: (v.to(dtype) if k in ("u", "delta", "z", "B", "C") else v.float()) for k, v in inp.items()}
    y, last = selective_scan(**x, delta_softplus=True, return_last_state=True, impl="fused")
    assert y.dtype == dtype and last.dtype == torch.float32
    y_r, last_r = selective_scan(**{k: v.float() for k, v in x.items()}, delta_softplus=True, return_last_state=True,
                                 impl="ref")
    torch.testing.assert_close(last, last_r, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y.float(), y_r.to(dtype).float(), rtol=1e-2, atol=1e-2)
    leaves = {k: v.clone().requires_grad_() for k, v in x.items()}
    selective_scan(**leaves, delta_softplus=True, impl="fused").float().sum().backward()
    ref_leaves = {k: v.float().clone().requires_grad_() for k, v in x.items()}
    selective_scan(**ref_leaves, delta_softplus=True, impl="ref").sum().backward()
    for k in leaves:
        assert leaves[k].grad.dtype == x[k].dtype
        torch.testing.assert_close(leaves[k].grad.float(), ref_leaves[k].grad, rtol=5e-2, atol=5e-2 *
                                   ref_leaves[k].grad.abs().max().item())


@needs_ext
def test_fused_function_gradcheck():
    ext = csrc.load()
    inp = _inputs(2, 4, 3, 7, seed=1, b_mode="grouped", groups=2)
    Bm = inp["B"].transpose(2, 3).contiguous()  # the kernel's (B, G, L, N)
    args = [inp["u"], inp["delta"], inp["A"], Bm, inp["C"].transpose(1, 2).contiguous()[:, None], inp["D"],
            inp["z"], inp["delta_bias"], inp["initial_state"]]
    args = [a.detach().clone().requires_grad_() for a in args]
    assert torch.autograd.gradcheck(lambda *a: FusedScan.apply(ext, *a, True, 3), args)
    const = _inputs(1, 3, 2, 5, seed=2, b_mode="const", c_mode="const")
    args = [const[k].detach().clone().requires_grad_() for k in ("u", "delta", "A", "B", "C")]
    assert torch.autograd.gradcheck(lambda *a: FusedScan.apply(ext, *a, None, None, None, None, False, 2), args)


@needs_ext
def test_threads_split_rows_without_changing_results():
    """Rows are split into one contiguous range per thread; per-thread gradient buffers are summed at the end, so
    1 and 2 threads agree to rounding, and a run repeats bit for bit."""
    inp = {k: v.float() for k, v in _inputs(3, 8, 16, 50, seed=5).items()}
    before = torch.get_num_threads()
    try:
        out = {}
        for threads in (1, 2, 2):
            torch.set_num_threads(threads)
            out.setdefault(threads, []).append(_run("fused", inp, REQUIRED + OPTIONAL, True, 16))
    finally:
        torch.set_num_threads(before)
    (y1, l1, g1), (y2, l2, g2), (y2b, _, g2b) = out[1][0], out[2][0], out[2][1]
    torch.testing.assert_close(y2, y1, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(l2, l1, rtol=1e-6, atol=1e-6)
    assert torch.equal(y2, y2b)
    for k in g1:
        torch.testing.assert_close(g2[k], g1[k], rtol=1e-5, atol=1e-5)
        assert torch.equal(g2[k], g2b[k])


@needs_ext
def test_fused_path_saves_no_expanded_state():
    """For backward the kernel keeps its inputs and one (B, D, N) state per chunk, never a (B, L, D, N) tensor."""
    batch, d, n, length, chunk = 2, 8, 32, 64, 16
    inp = {k: v.float().requires_grad_() for k, v in _inputs(batch, d, n, length, seed=7).items()}
    sizes = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
        selective_scan(**inp, delta_softplus=True, impl="fused", chunk_size=chunk)
    assert max(sizes) <= batch * max(d, n) * length and sum(sizes) < batch * length * d * n / 2  # inputs-sized


def _subprocess(code: str, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", **env}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
                          env=full_env)


CHECK_FALLBACK = """
    import torch, warnings
    from mlreads.mamba import csrc, selective_scan, selective_scan_ref
    g = torch.Generator().manual_seed(0)
    u, delta, z = (torch.randn(2, 3, 9, generator=g) for _ in range(3))
    A = -torch.rand(3, 4, generator=g) - 0.1
    B, C = (torch.randn(2, 4, 9, generator=g) for _ in range(2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = selective_scan(u, delta, A, B, C, z=z, delta_softplus=True, impl="fused")
    torch.testing.assert_close(y, selective_scan_ref(u, delta, A, B, C, z=z, delta_softplus=True), rtol=1e-5,
                               atol=1e-5)
    print("AVAILABLE", csrc.available())
    for w in caught:
        print("WARNING", str(w.message))
"""


def test_switch_turns_the_extension_off_silently(tmp_path):
    res = _subprocess(CHECK_FALLBACK, MLREADS_NO_EXT="1", MLREADS_CACHE=str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "AVAILABLE False" in res.stdout and "WARNING" not in res.stdout
    assert not (tmp_path / "ext").exists()  # nothing was built


def test_missing_compiler_falls_back_with_one_line(tmp_path):
    res = _subprocess(CHECK_FALLBACK, CXX=str(tmp_path / "no-such-c++"), MLREADS_CACHE=str(tmp_path))
    assert res.returncode == 0, res.stderr
    warnings_ = [ln for ln in res.stdout.splitlines() if ln.startswith("WARNING")]
    assert "AVAILABLE False" in res.stdout and len(warnings_) == 1
    assert "no C++ compiler" in warnings_[0] and "chunked" in warnings_[0] and "\n" not in warnings_[0]


def test_build_key_covers_every_header_the_kernel_includes():
    """Every file the kernel #includes from its own folder is hashed into the build key; otherwise an edit to that
    header would load the stale binary cached under the old key."""
    folder = csrc.SOURCE.parent
    seen, todo = set(), [csrc.SOURCE]
    while todo:
        for name in re.findall(r'^#include "([^"]+)"', todo.pop().read_text(), flags=re.MULTILINE):
            if name not in seen:
                seen.add(name)
                todo.append(folder / name)
    assert seen, "the kernel includes no local header: update this test"
    assert seen == {h.name for h in csrc.HEADERS}


def _prebuild(**env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": SRC, **env}
    return subprocess.run([sys.executable, "-m", "mlreads.mamba.csrc"], capture_output=True, text=True, timeout=300,
                          env=full_env, check=False)


def test_prebuild_command_exits_0_only_when_the_kernel_is_ready(tmp_path):
    """`make ext` (python -m mlreads.mamba.csrc) fails where the kernel cannot be built or is switched off, so a
    failed prebuild is never taken for a ready one; where it is built (cached by this session), it succeeds."""
    off = _prebuild(MLREADS_NO_EXT="1")
    assert off.returncode == 1 and "switched off" in off.stdout
    missing = _prebuild(CXX=str(tmp_path / "no-such-c++"), MLREADS_CACHE=str(tmp_path))
    assert missing.returncode == 1 and "unavailable" in missing.stdout
    if csrc.available():
        ready = _prebuild()
        assert ready.returncode == 0 and "ready in" in ready.stdout, ready.stdout + ready.stderr


def _load_with_fake_build(tmp_path, monkeypatch, seen):
    """csrc.load() with torch's builder replaced by one that records when it ran and whether torch's lock was there."""
    import time

    from mlreads.mamba import csrc

    monkeypatch.setenv("MLREADS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MLREADS_NO_EXT", raising=False)
    monkeypatch.setattr(csrc, "_STATE", {})
    folder = csrc.cache_dir() / f"selective_scan-{csrc.build_key()}"

    def fake_build(**kw):
        seen.append((time.monotonic(), (folder / "lock").exists()))
        return "module"

    monkeypatch.setattr("torch.utils.cpp_extension.load", fake_build)
    return csrc, folder


def _can_build() -> bool:
    from mlreads.mamba import csrc

    return shutil.which(os.environ.get("CXX", "c++")) is not None and csrc._ninja_on_path()


needs_toolchain = pytest.mark.skipif(not _can_build(), reason="no C++ compiler or ninja: load() never builds")


@needs_toolchain
def test_a_killed_builds_lock_is_removed_however_young(tmp_path, monkeypatch):
    """A build killed mid-way leaves torch's empty `lock` file, on which torch's builder waits forever: a process
    started right after the kill must not hang (it was: a lock under 10 minutes old was taken for a live build's)."""
    seen = []
    csrc, folder = _load_with_fake_build(tmp_path, monkeypatch, seen)
    folder.mkdir(parents=True)
    (folder / "lock").write_text("")  # just now: the killed build held no flock, so nobody is building
    with pytest.warns(RuntimeWarning, match="removed the build lock of a killed build"):
        assert csrc.load() == "module"
    assert seen == [(seen[0][0], False)], "the builder ran once, with the dead lock gone"


@needs_toolchain
def test_a_live_build_is_waited_for_and_its_lock_left_alone(tmp_path, monkeypatch, capsys):
    """Another process building (it holds the flock and torch's lock): load waits for it to finish instead of removing
    the lock from under it."""
    import time

    seen = []
    csrc, folder = _load_with_fake_build(tmp_path, monkeypatch, seen)
    folder.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"f = open({str(folder / 'build.flock')!r}, 'a'); fcntl.flock(f, fcntl.LOCK_EX)\n"
        f"open({str(folder / 'lock')!r}, 'w').close(); print('building', flush=True)\n"
        f"time.sleep(1.5); os.unlink({str(folder / 'lock')!r})\n")], stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout.readline().strip() == "building"
    t0 = time.monotonic()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "removed the build lock" warning: the lock was a live build's
        assert csrc.load() == "module"
    holder.wait(timeout=30)
    holder.stdout.close()
    assert seen[0][0] - t0 >= 1.0, "load waited for the live build"
    assert "waiting for another process that is building the fused kernel" in capsys.readouterr().err
    assert seen[0][1] is False, "the live build removed its own lock before load went on"


@needs_toolchain
def test_without_flock_a_young_lock_is_left_and_an_old_one_removed(tmp_path, monkeypatch):
    """A file system without flock (some network mounts): the build goes on unserialised, and torch's lock is taken
    for a killed build's only when older than STALE_LOCK_S (a young one may be another host's live build)."""
    import errno
    import os
    import time

    seen = []
    csrc, folder = _load_with_fake_build(tmp_path, monkeypatch, seen)

    def no_locks(*a, **k):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(csrc.fcntl, "flock", no_locks)
    folder.mkdir(parents=True)
    lock = folder / "lock"
    lock.write_text("")
    assert csrc.load() == "module" and lock.exists(), "a young lock is left alone"
    old = time.time() - csrc.STALE_LOCK_S - 1
    os.utime(lock, (old, old))
    monkeypatch.setattr(csrc, "_STATE", {})
    with pytest.warns(RuntimeWarning, match="removed the build lock of a killed build"):
        assert csrc.load() == "module"
    assert not lock.exists() and len(seen) == 2


def test_the_build_compiles_a_copy_of_the_sources_so_two_checkouts_share_one_build(tmp_path, monkeypatch):
    """torch writes the source paths into build.ninja: built from each checkout's own path, a clone and a worktree of
    the same sources rewrote it in turn and ninja rebuilt (minutes on a loaded machine) on each one's first load."""
    import os

    from mlreads.mamba import csrc

    monkeypatch.setenv("MLREADS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MLREADS_NO_EXT", raising=False)
    seen = []
    monkeypatch.setattr("torch.utils.cpp_extension.load", lambda **kw: seen.append(kw) or "module")
    monkeypatch.setattr(csrc, "_STATE", {})
    assert csrc.load() == "module"
    folder = csrc.cache_dir() / f"selective_scan-{csrc.build_key()}"
    (source,) = seen[0]["sources"]
    assert source == str(folder / "src" / csrc.SOURCE.name), "compiled from the copy in the build folder"
    for original in (csrc.SOURCE, *csrc.HEADERS):
        assert (folder / "src" / original.name).read_bytes() == original.read_bytes()
    old = 1_000_000_000
    os.utime(source, (old, old))
    csrc._staged(folder)
    assert os.stat(source).st_mtime == old, "an unchanged copy keeps its time stamp (ninja would rebuild)"
    (folder / "src" / csrc.SOURCE.name).write_text("// stale")
    csrc._staged(folder)
    assert (folder / "src" / csrc.SOURCE.name).read_bytes() == csrc.SOURCE.read_bytes(), "a differing copy is replaced"
