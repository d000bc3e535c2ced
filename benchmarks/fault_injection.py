"""Fault injection for ``radiobench run`` (issue 20): kills at each stage, corrupt stored files, hostile plugin
names, bad options, changed parents, bad generated data, hostile evaluator archives, umask.

Each probe runs the CLI in a subprocess (``synthetic``, ``smoke``, metrics pixel_w1 and mean_w1, its own temporary
directory and RADIOBENCH_CACHE) and is classified: ``ok`` (a clean one-line ``radiobench: error:`` exit 2 with
nothing lost, or a correct redo / result), ``traceback``, ``silent-wrong`` (exit 0 with a stale, foreign or wrong
result kept, data lost, or a file written outside --out) or ``crash`` (anything else). Probes that need a finished
run copy one base run; kills are compared with it (bit-identical). Fake plugins are a tiny distribution
(``*.dist-info/entry_points.txt``) on the subprocess's PYTHONPATH. Exits 1 on any silent-wrong or traceback.

    .venv/bin/python benchmarks/fault_injection.py [--only kill,corrupt,...] [--list] [--jobs 1] [--keep]
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROW = "edm/seed-0"
RUN = ["run", "--dataset", "synthetic", "--preset", "smoke", "--metrics", "pixel_w1,mean_w1", "-q"]
EDM = [*RUN, "--generators", "edm", "--generator-option", "edm.num_steps=3"]  # 3 Heun steps: sampling in seconds
REPLAY = [*RUN, "--generators", "replay"]
TIMEOUT = 600
PLUGINS = '''
import numpy as np
from radiobench_plugins.datasets.synthetic import SyntheticDataset
from radiobench_plugins.generators.replay import Replay
from radiobench_plugins.metrics.distributions import PixelW1

class Copy(Replay): pass
class Data(SyntheticDataset): pass
class Metric(PixelW1): pass
class Const(Replay):
    def sample_batch(self, c, seeds): return np.full((len(seeds), *self.images.shape[1:]), 0.5, np.float32)
class WrongShape(Replay):
    def sample_batch(self, c, seeds): return np.zeros((len(seeds), 1, 20, 20), np.float32)
class WrongCount(Replay):
    def sample_batch(self, c, seeds): return super().sample_batch(c, seeds)[1:]
class NaNs(Replay):
    def sample_batch(self, c, seeds): return super().sample_batch(c, seeds) * np.nan
class OutOfRange(Replay):
    def sample_batch(self, c, seeds): return super().sample_batch(c, seeds) * 3 - 1
'''


# -- running the CLI in a sandbox ----------------------------------------------------------------
@dataclass
class Res:
    rc: int
    out: str
    err: str

    def last(self) -> str:
        lines = [ln for ln in (self.err + "\n" + self.out).splitlines() if ln.strip()]
        return lines[-1].strip()[:160] if lines else "(no output)"

    def tally(self) -> str:
        m = re.search(r"done \d+, reused \d+, skipped \d+, failed \d+", self.out)
        return m.group(0) if m else self.last()


class Box:
    """One probe's temporary directory: ``runs/out`` (the run), ``cwd``, ``cache``, ``dist`` (fake plugins)."""

    def __init__(self, root: Path):
        self.root, self.out, self.cwd = root, root / "runs" / "out", root / "cwd"
        self.cache, self.dist, self.inputs = root / "cache", root / "dist", root / "in"
        self.cwd.mkdir(parents=True)
        self.inputs.mkdir()
        self.before = self.files()

    def env(self, cache: Path | None = None) -> dict[str, str]:
        env = {**os.environ, "RADIOBENCH_CACHE": str(cache or self.cache), "RADIOBENCH_PROGRESS": "0",
               "OMP_NUM_THREADS": "1"}
        if self.dist.exists():
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.dist), os.environ.get("PYTHONPATH")]))
        return env

    def popen(self, args, **kw) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "radiobench.cli", *map(str, args)], cwd=self.cwd,
                                env=self.env(kw.pop("cache", None)), start_new_session=True, **kw)

    def rb(self, *args, cache: Path | None = None) -> Res:
        p = self.popen(args, cache=cache, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = p.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            return Res(124, out, err + f"\ntimed out after {TIMEOUT} s")
        return Res(p.returncode, out, err)

    def files(self) -> set[str]:
        return {str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file()}

    def strays(self) -> list[str]:
        """Files that appeared outside the run directory, the cache and cwd/runs (the default --out)."""
        allowed = ("runs/out/", "cache/", "cwd/runs/", "cache-b/", "in/")  # in/: the probe's own inputs
        return sorted(f for f in self.files() - self.before if not f.startswith(allowed))

    def copy_base(self, base: Path) -> Path:
        shutil.copytree(base, self.out)
        self.before = self.files()
        return self.out

    def plugins(self, dist: str, groups: dict[str, dict[str, str]], source: str = PLUGINS, module: str = "fakeplug"):
        """Register fake plugins: ``groups`` maps 'generators' etc. to {name: 'Class'}."""
        info = self.dist / f"{dist}-0.1.dist-info"
        info.mkdir(parents=True)
        (self.dist / f"{module}.py").write_text(source)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text("".join(f"[radiobench.{g}]\n" + "".join(
            f"{n} = {module}:{c}\n" for n, c in eps.items()) for g, eps in groups.items()))
        self.before = self.files()


# -- judging ---------------------------------------------------------------------------------------
def clean_error(r: Res) -> str | None:
    """The one-line message of a clean exit-2 error, else None."""
    lines = r.err.strip().splitlines()
    errs = [i for i, ln in enumerate(lines) if re.match(r"radiobench( [\w-]+)*: error: ", ln)]
    return lines[errs[0]][:160] if r.rc == 2 and len(errs) == 1 and errs[0] == len(lines) - 1 else None


def judge(r: Res, box: Box, check: Callable[[], str | None] | None = None, refuse: bool = False,
          succeed: bool = False) -> tuple[str, str]:
    """Classify a run: ``refuse`` when only a clean error is right, ``succeed`` when only exit 0 is; ``check``
    says what is wrong after exit 0."""
    if strays := box.strays():
        return "silent-wrong", f"wrote outside --out: {', '.join(strays[:3])}"
    if "Traceback (most recent call last)" in r.err:
        return "traceback", r.last()
    if msg := clean_error(r):
        lost = sorted(f for f in box.before - box.files() if f.startswith("runs/out/"))
        return ("silent-wrong", f"data lost: {', '.join(lost[:3])}") if lost else ("crash" if succeed else "ok", msg)
    if r.rc == 0:
        problem = f"accepted ({r.tally()})" if refuse else (check() if check else None)
        return ("silent-wrong", problem) if problem else ("ok", r.tally())
    return "crash", f"exit {r.rc}: {failure(box) or r.last()}"


def failure(box: Box) -> str:
    """The first error a run recorded (error.json, or a metric record with status error)."""
    for f in sorted(box.out.glob("**/*.json")) if box.out.is_dir() else []:
        with contextlib.suppress(Exception):
            if (rec := json.loads(f.read_text())).get("error"):
                return f"{f.relative_to(box.out)}: {str(rec['error']).splitlines()[0][:120]}"
    return ""


def results(out: Path) -> dict[str, object]:
    """What a run directory claims: metric values, sample and checkpoint hashes (None: unreadable)."""
    def read(f: Path) -> object:
        if f.suffix == ".json":
            res = json.loads(f.read_text())["result"]
            return tuple(res[k] for k in ("value", "ci_low", "ci_high", "n_generated"))
        if f.suffix == ".npz":
            with np.load(f, allow_pickle=False) as z:
                return hashlib.sha256(b"".join(z[k].tobytes() for k in sorted(z.files))).hexdigest()
        return hashlib.sha256(f.read_bytes()).hexdigest()

    found: dict[str, object] = {}
    for pattern in ("metrics/*.json", "samples.npz", "checkpoint/weights.safetensors"):
        for f in sorted(out.glob(f"*/seed-*/{pattern}")):
            found[str(f.relative_to(out))] = None
            with contextlib.suppress(Exception):
                found[str(f.relative_to(out))] = read(f)
    return found


def custody(out: Path, base: Path, retrained: bool = False) -> str | None:
    """What is wrong with ``out`` compared with an uninterrupted base run: same checkpoint, so everything
    must equal the base run; another checkpoint, so samples and the row's metrics must have been redone."""
    cur, ref = results(out), results(base)
    if bad := [k for k in ref if cur.get(k) is None]:
        return f"missing or unreadable after the re-run: {', '.join(bad)}"
    ck, samples = f"{ROW}/checkpoint/weights.safetensors", f"{ROW}/samples.npz"
    if cur[ck] == ref[ck]:
        diff = [k for k in ref if cur[k] != ref[k]]
        if diff:
            return f"differs from an uninterrupted run: {diff}"
        return "checkpoint not re-trained" if retrained else None
    if cur[samples] == ref[samples]:
        return "samples drawn from the old checkpoint kept"
    stale = [k for k in ref if k.startswith(f"{ROW}/metrics/") and cur[k] == ref[k]]
    wrong = [k for k in ref if k.startswith("reference/") and cur[k] != ref[k]]
    return f"metrics of old samples kept: {stale}" if stale else f"reference row changed: {wrong}" if wrong else None


# -- probes ----------------------------------------------------------------------------------------
class Ctx:
    """Shared state: the temp root and the lazily built base run / evaluator export."""

    def __init__(self, root: Path):
        self.root, self._n, self._lock = root, 0, {k: threading.Lock() for k in ("box", "base", "export")}
        self._base: Path | None = None
        self._export: Path | None = None

    def box(self, name: str) -> Box:
        with self._lock["box"]:
            self._n += 1
            return Box(self.root / f"{self._n:02d}-{name.replace('/', '-')}")

    def base(self) -> Path:
        with self._lock["base"]:
            if self._base is None:
                box = Box(self.root / "base")
                r = box.rb(*EDM, "--out", box.out)
                if r.rc != 0:
                    raise RuntimeError(f"the base run failed: {r.err[-2000:]}")
                self._base = box.out
        return self._base

    def export(self) -> Path:
        """A valid evaluator export (BYOL at smoke) and its trained cache ``<root>/evcache``."""
        with self._lock["export"]:
            if self._export is None:
                box, tar = Box(self.root / "evaluators"), self.root / "byol.tar"
                for args in (("evaluators", "train", "--dataset", "synthetic", "--kinds", "byol", "-q"),
                             ("evaluators", "export", tar)):
                    if (r := box.rb(*args, cache=self.root / "evcache")).rc != 0:
                        raise RuntimeError(f"evaluator export failed: {r.err[-2000:]}")
                self._export = tar
        return self._export


def kill_at(trigger: str):
    """SIGKILL a run when ``trigger`` appears in its row; the re-run must equal the base run bit for bit."""
    def probe(ctx: Ctx, box: Box):
        base = ctx.base()
        args = [*EDM, "--out", box.out]
        p = box.popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while p.poll() is None and not (box.out / ROW / trigger).exists():
            time.sleep(0.005)
        if p.poll() is not None:
            return "crash", f"run ended (exit {p.returncode}) before {trigger} appeared: nothing interrupted"
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        box.before = box.files()
        return judge(box.rb(*args), box, lambda: custody(box.out, base), succeed=True)
    return probe


def truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def garble(data: bytes) -> bytes:
    """Flip the low bit of 64 bytes in the middle (floats stay finite; zip CRCs break)."""
    mid = len(data) // 2
    return data[:mid] + bytes(b ^ 1 for b in data[mid:mid + 64]) + data[mid + 64:]


def rerun(rel: str = "", how: Callable[[bytes], bytes] = bytes, *extra: str, retrained: bool = False):
    """A copy of the base run with the file ``rel`` changed by ``how``, run again (with ``extra`` arguments)."""
    def probe(ctx: Ctx, box: Box):
        out = box.copy_base(ctx.base())
        if rel:
            (out / rel).write_bytes(how((out / rel).read_bytes()))
        return judge(box.rb(*EDM, *extra, "--out", out), box, lambda: custody(out, ctx.base(), retrained))
    return probe


def scaled(factor: float) -> Callable[[bytes], bytes]:
    """safetensors bytes with every float tensor multiplied by ``factor``: other, valid weights."""
    from safetensors.numpy import load, save

    return lambda b: save({k: v * factor if v.dtype.kind == "f" else v for k, v in load(b).items()})


def bad_option(*extra: str, out_is_file: bool = False):
    """Must be refused (exit 2) before any work."""
    def probe(ctx: Ctx, box: Box):
        if out_is_file:
            box.out.parent.mkdir(parents=True)
            box.out.write_text("not a directory\n")
            box.before = box.files()
        verdict = judge(box.rb(*EDM, *extra, "--out", box.out), box, refuse=True)
        if verdict[0] == "ok" and (box.out / "edm").is_dir():
            return "crash", f"refused only after work had started: {verdict[1]}"
        return verdict
    return probe


def unused_conditioning(option: str, key: str):
    """``edm.use_flux=false``: refused, or a sample set not claiming the conditioning the model ignores."""
    def probe(ctx: Ctx, box: Box):
        def claims() -> str | None:
            with np.load(box.out / ROW / "samples.npz") as z:
                return f"the sample set carries {key} conditions the model ignores" if key in z.files else None
        return judge(box.rb(*EDM, "--generator-option", f"edm.{option}=false", "--out", box.out), box, claims)
    return probe


def hostile_name(kind: str, name: str, on_base: bool = False):
    """A plugin whose name must be refused (reserved, or a path; a dataset's with the default --out)."""
    def probe(ctx: Ctx, box: Box):
        box.plugins("hostile", {kind: {name: {"generators": "Copy", "metrics": "Metric", "datasets": "Data"}[kind]}})
        if on_base:
            box.copy_base(ctx.base())
        out = [] if kind == "datasets" else ["--out", box.out]
        flag = "--dataset" if kind == "datasets" else f"--{kind}"
        return judge(box.rb(*RUN, "--generators", "replay", flag, name, *out), box, refuse=True)
    return probe


def shadow_builtin(ctx: Ctx, box: Box):
    box.plugins("shadowdist", {"generators": {"replay": "Const"}})
    listing, r = box.rb("list", "generators"), box.rb(*REPLAY, "--out", box.out)
    if "Traceback (most recent call last)" in listing.err:
        return "traceback", listing.last()
    try:
        const = bool(np.all(np.load(box.out / "replay/seed-0/samples.npz")["images"] == 0.5))
    except Exception:
        const = False
    if const and "shadowdist" not in r.err + r.out:
        return "silent-wrong", "`run --generators replay` used the third-party plugin without a word"
    if "shadowdist" not in listing.out + listing.err:
        return "silent-wrong", "the shadowing plugin is silently dropped (`radiobench list` does not name it)"
    return judge(r, box)


def systemexit_plugin(ctx: Ctx, box: Box):
    box.plugins("exiting", {"generators": {"exits": "Gen"}}, source="raise SystemExit(3)\n", module="exiting")
    listing = box.rb("list", "generators")
    if "Traceback (most recent call last)" in listing.err:
        return "traceback", listing.last()
    if listing.rc != 0 or not re.search(r"exits\s+BROKEN", listing.out):
        return "crash", f"`radiobench list` exit {listing.rc}, broken plugin not listed: {listing.last()}"
    return judge(box.rb(*REPLAY, "--out", box.out), box, succeed=True)


def seeds_split(ctx: Ctx, box: Box):
    """--seeds 0 then --seeds 1 must give the table of --seeds 0,1 (run in another directory)."""
    joint = box.root / "runs" / "out" / "joint"
    for args in (("--seeds", "0", "--out", box.out / "split"), ("--seeds", "1", "--out", box.out / "split"),
                 ("--seeds", "0,1", "--out", joint)):
        if (r := box.rb(*REPLAY, *args)).rc != 0:
            return judge(r, box, succeed=True)
    timing = ("train_minutes", "sample_seconds_per_image")  # columns that differ between any two runs
    rows = [[r.split(",") for r in box.rb("leaderboard", d, "--format", "csv").out.splitlines()]
            for d in (box.out / "split", joint)]
    tables = [[[c for c, head in zip(r, t[0]) if head not in timing] for r in t] for t in rows]
    refs = [sorted(str(p.relative_to(d)) for p in d.glob("reference/**/*.json")) for d in (box.out / "split", joint)]
    if refs[0] != refs[1]:
        return "silent-wrong", f"reference rows {refs[0]} vs {refs[1]}"
    if tables[0] != tables[1]:
        return "silent-wrong", f"tables differ: {[r for r in tables[0] if r not in tables[1]][:2]}"
    return "ok", "same table and reference rows"


def concurrent_seeds(ctx: Ctx, box: Box):
    """A replay run (seed 1) into the directory of a training EDM run (seed 0): neither is lost from the manifest."""
    slow = box.popen([*EDM, "--out", box.out], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while slow.poll() is None and not (box.out / "manifest.json").exists():
        time.sleep(0.01)
    fast = box.rb(*REPLAY, "--seeds", "1", "--out", box.out)
    out, err = slow.communicate(timeout=TIMEOUT)
    for r in (Res(slow.returncode, out, err), fast):
        if r.rc != 0:
            return judge(r, box)
    config = json.loads((box.out / "manifest.json").read_text())["config"]
    ok = config["seeds"] == [0, 1] and sorted(config["generators"]) == ["edm", "replay"]
    return ("ok" if ok else "silent-wrong"), f"manifest: seeds {config['seeds']}, generators {config['generators']}"


def bad_samples(cls: str, refuse: bool = True):
    """A generator returning a wrong set: refused (error.json or exit 2), never scored."""
    def probe(ctx: Ctx, box: Box):
        box.plugins("badgen", {"generators": {"bad": cls}})
        r = box.rb(*RUN, "--generators", "bad", "--out", box.out)
        row = box.out / "bad/seed-0"
        if r.rc == 1 and (row / "error.json").exists() and not any((row / "metrics").glob("*.json")):
            return "ok", "row failed: " + json.loads((row / "error.json").read_text())["error"][:120]
        def clipped() -> str | None:
            return None if re.search(r"clip|range", (row / "samples.json").read_text()) else "pixels clipped silently"
        return judge(r, box, clipped, refuse=refuse)
    return probe


def archive(build: Callable[[Path], bytes], cache_limit: int = 20 << 20):
    """``evaluators import`` of a hostile archive: a clean error, nothing big or foreign in the cache."""
    def probe(ctx: Ctx, box: Box):
        tar = box.inputs / "evil.tar"
        tar.write_bytes(build(ctx.export()))
        r = box.rb("evaluators", "import", tar)
        size = sum(p.stat().st_size for p in box.cache.rglob("*") if p.is_file())
        if size > cache_limit:
            return "silent-wrong", f"{size >> 20} MB put into the cache (exit {r.rc})"
        return judge(r, box, refuse=True)
    return probe


def members(tar_path: Path) -> dict[str, bytes]:
    with tarfile.open(tar_path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def make_tar(files: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, **({"preset": 0} if mode == "w:xz" else {})) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def edit_entry(tar: Path, weights: Callable[[bytes], bytes] = bytes, meta: Callable[[dict, bytes], dict] | None = None,
               drop: str = "", extra: dict[str, bytes] | None = None, mode: str = "w") -> bytes:
    """The export with its weights and/or metadata changed, a file dropped or extra members added."""
    files = members(tar)
    entry = next(iter(files)).split("/")[0]
    w = files[f"{entry}/weights.safetensors"] = weights(files[f"{entry}/weights.safetensors"])
    if meta:
        files[f"{entry}/metadata.json"] = json.dumps(meta(json.loads(files[f"{entry}/metadata.json"]), w)).encode()
    files.pop(f"{entry}/{drop}", None)
    return make_tar({**files, **{k.replace("ENTRY", entry): v for k, v in (extra or {}).items()}}, mode)


def rehash(meta: dict, weights: bytes) -> dict:
    return {**meta, "weights_sha256": hashlib.sha256(weights).hexdigest()}


def forged_weights(ctx: Ctx, box: Box):
    """Weights changed and re-hashed in metadata.json: a run's stored fid_byol must not count as computed with them."""
    out, export = box.copy_base(ctx.base()), ctx.export()
    shutil.copytree(ctx.root / "evcache", box.cache)
    box.before = box.files()
    if (r := box.rb(*EDM, "--metrics", "fid_byol", "--out", out)).rc != 0:
        return judge(r, box, succeed=True)
    record = (out / ROW / "metrics/fid_byol.json").read_bytes()
    forged = box.inputs / "forged.tar"
    forged.write_bytes(edit_entry(export, scaled(1.5), rehash))
    if (r := box.rb("evaluators", "import", forged, cache=box.root / "cache-b")).rc != 0:
        return judge(r, box)
    r = box.rb(*EDM, "--metrics", "fid_byol", "--out", out, cache=box.root / "cache-b")
    kept = (out / ROW / "metrics/fid_byol.json").read_bytes() == record
    return judge(r, box, lambda: "the genuine evaluator's fid_byol kept" if kept else None)


def umask_readable(ctx: Ctx, box: Box):
    base = ctx.base()
    r = box.rb("publish", base, "--to", box.out)
    private = [str(p.relative_to(d)) for d in (base, box.out) for p in d.rglob("*")
               if p.is_file() and p.stat().st_mode & 0o044 != 0o044]
    if private:
        return "silent-wrong", f"{len(private)} files not readable by group/others under umask 022: {private[:3]}"
    return judge(r, box)


W, NPZ, M = f"{ROW}/checkpoint/weights.safetensors", f"{ROW}/samples.npz", f"{ROW}/metrics/pixel_w1.json"
PROBES: list[tuple[str, Callable, str]] = [  # name, probe(ctx, box) -> (verdict, detail), what it does
    ("kill/fit", kill_at("train/train_state.pt"), "SIGKILL mid-training, re-run: bit-identical"),
    ("kill/sample", kill_at("checkpoint/fit.json"), "SIGKILL while sampling, re-run: bit-identical"),
    ("kill/evaluate", kill_at("samples.npz"), "SIGKILL as evaluation starts, re-run: bit-identical"),
    ("corrupt/manifest_truncated", rerun("manifest.json", truncate), "half a manifest.json"),
    ("corrupt/samples_npz_truncated", rerun(NPZ, truncate), "half a samples.npz"),
    ("corrupt/samples_npz_garbled", rerun(NPZ, garble), "64 flipped bytes in samples.npz"),
    ("corrupt/samples_json_truncated", rerun(f"{ROW}/samples.json", truncate), "half a samples.json"),
    ("corrupt/weights_truncated", rerun(W, truncate), "half the checkpoint weights"),
    ("corrupt/weights_garbled", rerun(W, garble), "64 flipped bytes in the checkpoint weights"),
    ("corrupt/config_json_truncated", rerun(f"{ROW}/checkpoint/config.json", truncate), "half a checkpoint config"),
    ("corrupt/fit_json_truncated", rerun(f"{ROW}/checkpoint/fit.json", truncate), "half a fit.json"),
    ("corrupt/metric_truncated", rerun(M, truncate), "half a metric record"),
    ("corrupt/reference_metric_truncated", rerun(M.replace(ROW, "reference/seed-0"), truncate),
     "half a reference-row metric record"),
    ("corrupt/metric_ok_without_value", rerun(M, lambda b: b'{"metric": "pixel_w1", "status": "ok"}'),
     "a metric record with status ok and no result"),
    ("names/generator_dotdot", hostile_name("generators", "../escape"), "a generator named ../escape"),
    ("names/generator_reference", hostile_name("generators", "reference", on_base=True), "a generator: reference"),
    ("names/metric_dotdot", hostile_name("metrics", "../../../../escape"), "a metric named ../../../../escape"),
    ("names/dataset_dotdot", hostile_name("datasets", "../../escape"), "dataset ../../escape, the default --out"),
    ("names/shadow_builtin", shadow_builtin, "a third-party generator named replay: reported"),
    ("names/systemexit_on_import", systemexit_plugin, "a plugin raising SystemExit on import: list and run work"),
    ("options/negative_seed", bad_option("--seeds=-1"), "--seeds=-1"),
    ("options/batch_size_0", bad_option("--batch-size", "0"), "--batch-size 0"),
    ("options/steps_negative", bad_option("--generator-option", "edm.steps=-5"), "edm.steps=-5"),
    ("options/num_steps_abc", bad_option("--generator-option", "edm.num_steps=abc"), "edm.num_steps=abc"),
    ("options/num_steps_float", bad_option("--generator-option", "edm.num_steps=2.5"), "edm.num_steps=2.5"),
    ("options/resolution_0", bad_option("--dataset-option", "resolution=0"), "resolution=0"),
    ("options/resolution_float", bad_option("--dataset-option", "resolution=2.5"), "resolution=2.5"),
    ("options/unknown_option", bad_option("--generator-option", "edm.no_such_option=1"), "an option edm lacks"),
    ("options/use_flux_false", unused_conditioning("use_flux", "peak_flux"), "edm.use_flux=false"),
    ("options/use_labels_false", unused_conditioning("use_labels", "labels"), "edm.use_labels=false"),
    ("options/out_is_file", bad_option(out_is_file=True), "--out naming a file"),
    ("parents/steps_21", rerun("", bytes, "--generator-option", "edm.steps=21", retrained=True),
     "edm.steps=21 after 20: re-trained, re-sampled, re-evaluated"),
    ("parents/replaced_checkpoint", rerun(W, scaled(1.05)), "other weights: re-sampled, re-evaluated"),
    ("parents/seeds_split", seeds_split, "--seeds 0 then --seeds 1: the table of --seeds 0,1"),
    ("parents/concurrent_seeds", concurrent_seeds, "replay seed 1 while edm seed 0 trains, one run: both kept"),
    ("generated/wrong_shape", bad_samples("WrongShape"), "20x20 images for a 40x40 dataset"),
    ("generated/wrong_count", bad_samples("WrongCount"), "one image too few per batch"),
    ("generated/nan", bad_samples("NaNs"), "NaN pixels"),
    ("generated/out_of_range", bad_samples("OutOfRange", refuse=False), "pixels in [-1, 2]: refused or recorded"),
    ("archives/not_a_tar", archive(lambda t: b"not a tar archive\n" * 40), "text, not a tar"),
    ("archives/xz_bomb", archive(lambda t: edit_entry(t, extra={"ENTRY/losses.csv": bytes(300 << 20)}, mode="w:xz")),
     "a small xz tar unpacking to 300 MB"),
    ("archives/missing_weights", archive(lambda t: edit_entry(t, drop="weights.safetensors")), "no weights file"),
    ("archives/bad_json", archive(lambda t: edit_entry(t, extra={"ENTRY/metadata.json": b"{not"})), "bad metadata"),
    ("archives/pickle_weights", archive(lambda t: edit_entry(t, lambda _: pickle.dumps(np.zeros(3)), rehash)),
     "a pickle as weights, its sha256 recorded"),
    ("archives/path_traversal", archive(lambda t: make_tar({"../../escaped.txt": b"x", **members(t)})), "../ member"),
    ("archives/weights_hash_mismatch", archive(lambda t: edit_entry(t, garble)), "weights not matching their sha256"),
    ("archives/forged_weights", forged_weights, "weights changed and re-hashed: stored results re-evaluated"),
    ("umask/result_files", umask_readable, "run and publish files readable under umask 022"),
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", help="comma-separated categories or probe names (kill, corrupt, names, options, ...)")
    p.add_argument("--list", action="store_true", help="list the probes and exit")
    p.add_argument("--jobs", type=int, default=1, help="probes run at once (default 1: CPU is scarce)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = p.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    probes = [pr for pr in PROBES if only is None or pr[0] in only or pr[0].split("/")[0] in only]
    if not probes:
        print(f"no probe matches --only {args.only}; the probes:", file=sys.stderr)
    if args.list or not probes:
        for name, _, desc in probes or PROBES:
            print(f"{name:<36} {desc}")
        return 0 if probes else 2
    os.umask(0o022)  # the runs' umask (probe umask/result_files)
    root = Path(tempfile.mkdtemp(prefix="radiobench-faults-"))
    ctx, t0, lock = Ctx(root), time.perf_counter(), threading.Lock()

    def one(probe) -> str:
        name, fn, _ = probe
        start = time.perf_counter()
        try:
            verdict, detail = fn(ctx, ctx.box(name))
        except Exception as exc:  # a probe that cannot run is reported, not hidden
            verdict, detail = "crash", f"probe failed: {type(exc).__name__}: {str(exc)[-300:]}"
        with lock:
            print(f"{verdict:<13} {name:<36} {time.perf_counter() - start:5.0f} s  {detail}", flush=True)
        return verdict

    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        verdicts = list(pool.map(one, probes))
    n = {v: verdicts.count(v) for v in ("silent-wrong", "traceback", "crash", "ok")}
    print(f"\nsilent wrong results: {n['silent-wrong']}, tracebacks: {n['traceback']}, other failures: {n['crash']}, "
          f"ok: {n['ok']} ({len(verdicts)} probes, {time.perf_counter() - t0:.0f} s)")
    print(f"kept {root}" if args.keep else "", end="\n" if args.keep else "")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if n["silent-wrong"] or n["traceback"] else 0


if __name__ == "__main__":
    sys.exit(main())
