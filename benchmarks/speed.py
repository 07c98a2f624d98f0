"""Speed of a B-spline KAN layer: kanlab's kernels against the GEMM floor, the efficient-kan formulation, an MLP
and (when installed) pykan; peak activation memory per case; the demo fit end to end against pykan's fit.

Usage::

    python benchmarks/speed.py --quick            # 256→256 layer, batch 1024, G ∈ {5, 20, 50, 200}: ~8 min
    python benchmarks/speed.py                    # the full suite (layer and 784→256→10 stack, batches
                                                  #  64 / 1024 / 8192, G ∈ {5, 10, 20, 50, 100, 200}): long
    python benchmarks/speed.py --e2e              # add the end-to-end demo fit vs pykan's fit

Rows per case (time of one step, median of ``--reps`` repetitions interleaved across rows after warm-up):

* ``GEMM floor`` — a bare ``B × in·(G+k+1) × out`` matmul (+ its two backward matmuls in ``train`` mode);
* ``nn.Linear+SiLU`` — an MLP of the same widths;
* ``efficient-kan formulation`` — kanlab's ``"reference"`` path: dense basis tensor + GEMM (written by us);
* ``kanlab dense`` / ``kanlab local`` — the two fast paths (``←`` marks the one ``"auto"`` picks);
* ``pykan`` — ``kan.KAN(width, grid=G, k=3)`` in ``speed()`` mode, when ``pykan`` is importable.

Each row of a case runs in a fresh process of its own (``--same-process`` puts them all in this one), so no row's
time depends on the allocator state another row leaves behind; there each timed step directly follows an untimed
one, as steps do in a training loop.  Times are wall-clock (CUDA events on a GPU)
and, on CPU, process CPU time too: on a shared machine the CPU
time is the steadier number; ratios are taken between rows measured side by side.  ``train`` = forward +
backward of ``sum(y)``; ``fwd`` = forward under ``no_grad``.  Peak activation memory is measured in a
separate process per case (Linux): peak RSS during one train step above the RSS just before it (the peak is
reset through ``/proc/self/clear_refs``; glibc unmaps large blocks on free), minus the parameter gradients the
step creates.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from kanlab.kernels import choose_kernel, extension_available  # noqa: E402
from kanlab.kernels.extension import extension_error  # noqa: E402
from kanlab.layers.linear import KANLinear  # noqa: E402
from machine_info import cpu_line  # noqa: E402

ORDER = 3
CAPPED = ("efficient-kan formulation", "pykan")  # comparison rows whose repetitions --slow-ms may cap
SHAPES = {"layer": [256, 256], "stack": [784, 256, 10]}


# ---- the rows ------------------------------------------------------------------------------------------
def make_row(name: str, widths: list[int], grid: int, batch: int, device: str):
    """Return (callable step(mode), n_param_grad_bytes) for one row."""
    dtype = torch.float32
    torch.manual_seed(0)
    x = torch.rand(batch, widths[0], device=device, dtype=dtype) * 2 - 1
    if name == "GEMM floor":
        mats = [torch.randn(widths[i + 1], widths[i] * (grid + ORDER + 1), device=device, dtype=dtype,
                            requires_grad=True) for i in range(len(widths) - 1)]
        feats = [torch.rand(batch, widths[i] * (grid + ORDER + 1), device=device, dtype=dtype,
                            requires_grad=True) for i in range(len(widths) - 1)]
        params = mats + feats

        def step(mode):
            outs = [f @ w.t() for f, w in zip(feats, mats)]
            if mode == "train":
                sum(o.sum() for o in outs).backward()
    elif name == "nn.Linear+SiLU":
        layers = []
        for i in range(len(widths) - 1):
            layers += [torch.nn.Linear(widths[i], widths[i + 1], device=device, dtype=dtype), torch.nn.SiLU()]
        model = torch.nn.Sequential(*layers)
        params = list(model.parameters())

        def step(mode):
            model(x).sum().backward() if mode == "train" else model(x)
    elif name == "pykan":
        from kan import KAN  # noqa: PLC0415 - optional

        with contextlib.redirect_stdout(io.StringIO()):
            model = KAN(width=list(widths), grid=grid, k=ORDER, seed=0, auto_save=False, device=device)
            model.speed()
        params = [p for p in model.parameters() if p.requires_grad]

        def step(mode):
            model(x).sum().backward() if mode == "train" else model(x)
    else:
        kernel = {"efficient-kan formulation": "reference", "kanlab dense": "dense", "kanlab local": "local",
                  "kanlab auto": "auto"}[name]
        layers = [KANLinear(widths[i], widths[i + 1], grid_size=grid, order=ORDER, device=device, dtype=dtype)
                  for i in range(len(widths) - 1)]
        for layer in layers:
            layer.kernel = kernel
        model = torch.nn.Sequential(*layers)
        params = list(model.parameters())

        def step(mode):
            model(x).sum().backward() if mode == "train" else model(x)

    def run(mode):
        for p in params:
            p.grad = None
        if mode == "train":
            step(mode)
        else:
            with torch.no_grad():
                step(mode)

    grad_bytes = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    return run, grad_bytes


def rows_for(widths, grid, args) -> list[str]:
    rows = ["GEMM floor", "nn.Linear+SiLU", "efficient-kan formulation", "kanlab dense", "kanlab local"]
    if args.pykan and grid in args.pykan_grids:
        rows.append("pykan")
    return rows


def auto_path(widths, grid, batch, device) -> str:
    return choose_kernel(batch, widths[0], widths[1], grid, ORDER, device)


# ---- timing --------------------------------------------------------------------------------------------
def timer(device: str):
    if device.startswith("cuda"):
        def measure(fn):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end), float("nan")
    else:
        def measure(fn):
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            return (time.perf_counter() - w0) * 1e3, (time.process_time() - c0) * 1e3
    return measure


def time_case(widths, grid, batch, mode, args, device):
    """Median wall / CPU ms of every row, repetitions interleaved across rows (``--same-process``: every row in
    this process; default: every row in a fresh worker process of its own, see :class:`RowWorker`)."""
    rows = rows_for(widths, grid, args)
    if args.same_process:
        measure = timer(device)
        runs = {}
        for name in rows:
            runs[name], _ = make_row(name, widths, grid, batch, device)
            for _ in range(args.warmup):
                runs[name](mode)
        return _interleave(rows, {name: (lambda name=name: measure(lambda: runs[name](mode))) for name in rows},
                           args)
    spec = dict(widths=widths, grid=grid, batch=batch, mode=mode, device=device, threads=torch.get_num_threads(),
                warmup=args.warmup, warm_malloc=args.warm_malloc)
    workers = {name: RowWorker(dict(spec, name=name)) for name in rows}  # start together, then wait
    try:
        for worker in workers.values():
            worker.ready()
        return _interleave(rows, {name: w.time_step for name, w in workers.items()}, args)
    finally:
        for worker in workers.values():
            worker.close()


def _interleave(rows, step, args):
    samples = {name: [] for name in rows}
    slow = set()
    for rep in range(args.reps):
        for name in rows:
            if name in slow and rep >= args.slow_reps:
                continue
            samples[name].append(step[name]())
            if samples[name][-1][0] > args.slow_ms and name in CAPPED:
                slow.add(name)
    return {name: (statistics.median(s[0] for s in samples[name]), statistics.median(s[1] for s in samples[name]),
                   len(samples[name])) for name in rows}


# ---- one row per process -------------------------------------------------------------------------------
class RowWorker:
    """One row of one case in a fresh process, timed one step per request.

    Rows share no process state: a row's time does not depend on which other rows run.  (In one process the
    allocator state other rows leave behind changes the time of allocation-heavy rows: glibc raises its mmap
    and trim thresholds after large frees, and the efficient-kan formulation took 55 ms per step (G = 5, two
    threads) in a full run with pykan's rows and 111 ms without them.)  Every worker is a training process of
    its own, as it would be for a user, and runs its steps back to back (an untimed one before each timed one).
    """

    def __init__(self, spec: dict):
        self.spec = spec
        self.log = tempfile.TemporaryFile(mode="w+")
        env = dict(os.environ, OMP_NUM_THREADS=str(spec["threads"]))
        if spec.get("warm_malloc"):  # glibc: the largest mmap threshold, never give the heap's top back
            env.update(MALLOC_MMAP_THRESHOLD_=str(32 << 20), MALLOC_TRIM_THRESHOLD_=str(1 << 40))
        self.proc = subprocess.Popen([sys.executable, __file__, "--row-worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        self.proc.stdin.write(json.dumps(spec) + "\n")
        self.proc.stdin.flush()

    def _reply(self):
        line = self.proc.stdout.readline()
        if not line:
            self.log.seek(0)
            raise RuntimeError(f"row worker for {self.spec} died:\n{self.log.read()[-4000:]}")
        return json.loads(line)

    def ready(self) -> None:
        self._reply()

    def time_step(self) -> tuple[float, float]:
        self.proc.stdin.write("step\n")
        self.proc.stdin.flush()
        return tuple(self._reply())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.stdin.close()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=60)
        self.log.close()


def row_worker() -> None:
    """The worker side of :class:`RowWorker`: a spec line on stdin, then per ``step`` line one untimed and one
    timed step (the process idled while the other rows ran: the untimed step wakes its threads and caches);
    replies (JSON lines) go to the original stdout, anything else printed goes to stderr."""
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    spec = json.loads(sys.stdin.readline())
    torch.set_num_threads(spec["threads"])
    extension_available()
    run, _ = make_row(spec["name"], spec["widths"], spec["grid"], spec["batch"], spec["device"])
    for _ in range(spec["warmup"]):
        run(spec["mode"])
    measure = timer(spec["device"])
    print(json.dumps("ready"), file=replies, flush=True)
    for line in sys.stdin:
        if line.strip() == "step":
            run(spec["mode"])  # back to back with the timed step, as in a training loop: threads and caches warm
            print(json.dumps(measure(lambda: run(spec["mode"]))), file=replies, flush=True)


# ---- memory (separate process) -------------------------------------------------------------------------
def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_worker(spec: str) -> None:
    """One case in a fresh process: peak RSS during one train step above the RSS just before it, minus the
    parameter gradients the step creates (Linux: the peak is reset through /proc/self/clear_refs; glibc is
    told to unmap every large block on free, see measure_memory, so the RSS follows the live memory)."""
    import gc

    widths, grid, batch, name = json.loads(spec)
    torch.set_num_threads(1)
    extension_available()
    small, _ = make_row(name, widths, 3, 8, "cpu")  # one-time costs (lazy init, code pages), tiny case
    small("train")
    small("train")
    del small
    run, grad_bytes = make_row(name, widths, grid, batch, "cpu")
    gc.collect()
    with open("/proc/self/clear_refs", "w", encoding="utf-8") as fh:
        fh.write("5")  # reset the peak (VmHWM) to the current RSS
    base = _status_kib("VmRSS")
    run("train")
    peak = _status_kib("VmHWM")
    print(json.dumps(max(0, (peak - base) * 1024 - grad_bytes)))


def measure_memory(cases) -> dict:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0", OMP_NUM_THREADS="1")
    out = {}
    for case in cases:
        proc = subprocess.run([sys.executable, __file__, "--memory-worker", json.dumps(case)], capture_output=True,
                              text=True, timeout=600, env=env)
        key = "{}|{}|{}|{}".format(*case)
        out[key] = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    return out


# ---- end to end ----------------------------------------------------------------------------------------
def e2e(args) -> list[str]:
    """The demo task (f = exp(sin(πx) + y²), [2,5,1], grids 3,5,10,20, LBFGS) fitted by kanlab and pykan with
    the same settings (``--e2e-width`` / ``--e2e-points`` scale it up)."""
    from kanlab import KAN, fit, make_dataset
    from kanlab.kernels import ops as kanlab_ops

    steps, grids = args.e2e_steps, [3, 5, 10, 20]
    every = 50 // 10  # pykan's fit: grid_update_num=10 updates spread over stop_grid_update_step=50 steps
    width = [int(w) for w in args.e2e_width.split(",")]
    n = args.e2e_points
    data = make_dataset("exp(sin(pi*x)+y**2)", n_train=n, n_test=1000, seed=0, dtype=torch.float64)
    lines = [f"End to end: f = exp(sin(pi x) + y^2), width {width}, grids {grids}, {steps} LBFGS steps per grid, "
             f"grid updates every {every} steps until step 50, float64, {n} train points, "
             f"{torch.get_num_threads()} thread(s)", "",
             "| implementation | seconds | test RMSE |", "|---|---|---|"]
    with torch.random.fork_rng():  # the same initial model whatever ran before
        torch.manual_seed(0)
        model = KAN(width, grid_size=grids[0], dtype=torch.float64)
    # One-time process costs are not fit time, for either library: the first torch.optim optimizer built in a
    # process imports torch's compiler stack (~1 s; both fits build one), and kanlab loads its C++ kernels.
    torch.optim.LBFGS([torch.zeros(1, requires_grad=True)])
    kanlab_ops.load_extension()
    t0 = time.perf_counter()
    fit(model, data, steps=steps, optimizer="lbfgs", grids=grids, update_grid_every=every,
        stop_grid_update_step=50, progress=False, seed=0)
    t_ours = time.perf_counter() - t0
    with torch.no_grad():
        rmse = torch.sqrt(torch.mean((model(data["test_input"]) - data["test_label"]) ** 2)).item()
    lines.append(f"| kanlab fit | {t_ours:.2f} | {rmse:.2e} |")
    if args.pykan:
        from kan import KAN as PyKAN  # noqa: PLC0415

        dataset = {k: data[k] for k in ("train_input", "train_label", "test_input", "test_label")}
        prev, cwd = torch.get_default_dtype(), os.getcwd()
        torch.set_default_dtype(torch.float64)
        tmp = tempfile.TemporaryDirectory()
        os.chdir(tmp.name)  # pykan's fit appends to ./model/history.txt even with auto_save=False
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                t0 = time.perf_counter()
                pk = PyKAN(width=width, grid=grids[0], k=ORDER, seed=0, auto_save=False, ckpt_path="model")
                os.makedirs("model", exist_ok=True)
                for i, g in enumerate(grids):
                    if i:
                        pk = pk.refine(g)
                    pk.fit(dataset, opt="LBFGS", steps=steps, lamb=0.0, update_grid=True,
                           grid_update_num=10, stop_grid_update_step=50)
                t_pykan = time.perf_counter() - t0
                pred = pk(dataset["test_input"])
            rmse = torch.sqrt(torch.mean((pred - dataset["test_label"]) ** 2)).item()
            lines.append(f"| pykan fit | {t_pykan:.2f} | {rmse:.2e} |")
            lines += ["", f"kanlab is {t_pykan / t_ours:.1f}x faster end to end."]
        finally:
            torch.set_default_dtype(prev)
            os.chdir(cwd)
            tmp.cleanup()
    return lines


# ---- report --------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="256→256 layer, batch 1024, G ∈ {5,20,50,200}")
    p.add_argument("--shapes", default=None, help="comma list of: layer, stack")
    p.add_argument("--batches", default=None, help="comma list, e.g. 64,1024,8192")
    p.add_argument("--grids", default=None, help="comma list, e.g. 5,10,20,50,100,200")
    p.add_argument("--modes", default="train,fwd", help="comma list of: train, fwd")
    p.add_argument("--threads", default="1,2", help="comma list of thread counts")
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--slow-ms", type=float, default=400.0,
                   help="efficient-kan / pykan rows slower than this per step ...")
    p.add_argument("--slow-reps", type=int, default=3, help="... stop after this many repetitions")
    p.add_argument("--no-pykan", dest="pykan", action="store_false")
    p.add_argument("--pykan-grids", default=None, help="grid sizes with a pykan row (default: all; quick: 5)")
    p.add_argument("--no-memory", dest="memory", action="store_false")
    p.add_argument("--e2e", action="store_true",
                   help="also time the demo fit against pykan's fit (once per --threads count)")
    p.add_argument("--e2e-steps", type=int, default=40)
    p.add_argument("--e2e-width", default="2,5,1", help="network widths of the end-to-end fit (2 inputs)")
    p.add_argument("--e2e-points", type=int, default=1000, help="training points of the end-to-end fit")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--same-process", action="store_true",
                   help="time every row in this process (default: each row of a case in a process of its own)")
    p.add_argument("--warm-malloc", action="store_true",
                   help="workers keep freed memory (glibc mmap threshold 32 MiB, no trimming): fewer page faults "
                        "for allocation-heavy rows")
    p.add_argument("--memory-worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--row-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.row_worker:
        row_worker()
        return 0
    if args.memory_worker:
        memory_worker(args.memory_worker)
        return 0
    quick = args.quick
    shapes = (args.shapes or ("layer" if quick else "layer,stack")).split(",")
    batches = [int(b) for b in (args.batches or ("1024" if quick else "64,1024,8192")).split(",")]
    grids = [int(g) for g in (args.grids or ("5,20,50,200" if quick else "5,10,20,50,100,200")).split(",")]
    modes = args.modes.split(",")
    if args.pykan:
        try:
            import kan  # noqa: F401, PLC0415
        except Exception:
            args.pykan = False
    args.pykan_grids = {int(g) for g in (args.pykan_grids or ("5" if quick else ",".join(map(str, grids))))
                        .split(",")}
    t0 = time.perf_counter()
    built = extension_available()
    build_s = time.perf_counter() - t0
    print(f"# kanlab speed — {cpu_line()}; torch {torch.__version__}; device {args.device}")
    print(f"C++ kernels: {'loaded' if built else 'unavailable (' + str(extension_error()) + ')'} "
          f"(build/load {build_s:.1f} s, reported separately from the timings); pykan: "
          f"{'yes' if args.pykan else 'not installed'}; order k={ORDER}; float32; medians of {args.reps} "
          f"interleaved repetitions after {args.warmup} warm-up steps (efficient-kan and pykan rows slower than "
          f"{args.slow_ms:.0f} ms stop after {args.slow_reps}, marked *); "
          f"{'all rows in one process' if args.same_process else 'each row of a case in a process of its own'}"
          f"{'; glibc keeps freed memory (--warm-malloc)' if args.warm_malloc else ''}")
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        for shape in shapes:
            widths = SHAPES[shape]
            for batch in batches:
                for mode in modes:
                    print(f"\n## {shape} {'→'.join(map(str, widths))}, batch {batch}, {mode}, {threads} thread(s)\n")
                    print("| G | row | wall ms | cpu ms | wall / floor | cpu / floor |")
                    print("|---|---|---|---|---|---|")
                    auto_ms = {}
                    for grid in grids:
                        res = time_case(widths, grid, batch, mode, args, args.device)
                        floor_w, floor_c, _ = res["GEMM floor"]
                        auto = auto_path(widths, grid, batch, args.device)
                        auto_ms[grid] = res[f"kanlab {auto}"][0]
                        for name, (w, c, n) in res.items():
                            mark = " ←auto" if name == f"kanlab {auto}" else ""
                            star = "*" if n < args.reps else ""
                            print(f"| {grid} | {name}{mark}{star} | {w:.1f} | {c:.1f} | {w / floor_w:.2f} | "
                                  f"{c / floor_c:.2f} |", flush=True)
                    if len(auto_ms) > 1:  # how the auto path's time grows with the grid (the flatness ratio)
                        lo, hi = min(auto_ms), max(auto_ms)
                        print(f"\nkanlab auto: time(G={hi}) / time(G={lo}) = {auto_ms[hi] / auto_ms[lo]:.2f} "
                              f"(wall, medians above)", flush=True)
    if args.memory and args.device == "cpu":
        cases = [(SHAPES[s], g, b, name) for s in shapes for b in batches for g in grids
                 for name in ("efficient-kan formulation", "kanlab dense", "kanlab local")]
        mem = measure_memory(cases)
        print("\n## peak activation memory, train step (MiB; parameter gradients excluded; separate process)\n")
        print("| shape | batch | G | efficient-kan formulation | kanlab dense | kanlab local |")
        print("|---|---|---|---|---|---|")
        for s in shapes:
            for b in batches:
                for g in grids:
                    vals = [mem.get(f"{SHAPES[s]}|{g}|{b}|{n}") for n in
                            ("efficient-kan formulation", "kanlab dense", "kanlab local")]
                    cells = " | ".join("?" if v is None else f"{v / 2**20:.1f}" for v in vals)
                    print(f"| {s} | {b} | {g} | {cells} |")
    if args.e2e:  # the same fits once per thread count
        for threads in [int(t) for t in args.threads.split(",")]:
            torch.set_num_threads(threads)
            print()
            print("\n".join(e2e(args)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
