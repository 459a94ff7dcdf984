"""The course's metric-learning losses vs pytorch-metric-learning (PML), side by side in one run.

    python benchmarks/metric_losses_vs_pml.py [--repeats 7] [--pml-repeats 3] [--device cpu|cuda] [--threads 1]

Needs about 6 GB of free memory (PML's lifted loss builds a pairs x pairs matrix: ~5 GB at N=256; pass
``--no-pml-memory`` to skip measuring it) and takes one to two minutes on a CPU.

PML is a benchmark-only dependency (the ``dev`` extra). Both sides get the same embeddings and labels, and PML is
configured to compute the same quantity:

* distances: ``LpDistance(normalize_embeddings=False, p=2, power=1)`` -- raw (not normalized, not squared)
  Euclidean distances, the course's convention;
* lifted structure: ``LiftedStructureLoss(neg_margin=margin, pos_margin=0)``. PML sums over *ordered* positive pairs
  ``(i, j)``, halves each term and averages over the ordered pairs (``MeanReducer``): every unordered pair appears
  twice with the same ``J_ij``, so its value is ``1/(2|P|) sum_{unordered} max(0, J_ij)^2`` -- Song et al.'s
  normalization, the course's. The values are compared directly, no conversion;
* triplet batch-all: ``TripletMarginMiner(margin, "all")`` + ``TripletMarginLoss(margin)``. The miner keeps the
  triplets with ``D_an - D_ap <= margin`` (the others have a zero hinge), so with ``reducer=SumReducer()`` PML
  returns the sum of the hinge over all triplets; the course's ``batch_all_triplet_loss`` is the mean over all
  ``|T|`` valid triplets, so the check is ``PML == course * |T|``.

Timings are forward + backward, median of several repeats after a warm-up, on one device for both. Following the
course's benchmark rule, only ratios are printed on the CPU (absolute times depend on the machine and its load);
absolute milliseconds are printed too on a GPU. The batch-all triplet loss is timed on the CPU and, when CUDA is
present, on the GPU too, in the same run (``--device`` chooses the device of the other lines); without CUDA the GPU
lines are skipped. As a GPU proxy a CPU can measure, the triplet section ends with the operators per forward +
backward (torch.profiler; views excluded, since a GPU launches about one kernel per operator) and the host syncs
(``nonzero``, ``.item()``...: each one stalls the GPU's queue) of both of the course's paths and of PML's.

Peak extra memory of the course's lifted loss (forward + backward) is measured in a fresh subprocess per
configuration, because the CPU allocator of torch is invisible to tracemalloc and to the profiler's summaries: the
child builds its inputs, runs a small warm-up (so libraries and kernels are loaded), resets the kernel's peak-RSS
mark of the process (``echo 5 > /proc/self/clear_refs``), reads its resident set size (``VmRSS``), runs the loss
once (forward + backward) and reads the peak (``VmHWM``); the difference is the extra memory the loss needed at its
peak. (``ru_maxrss`` would not do: Linux carries it over from the parent across ``exec``.) On CUDA
``torch.cuda.max_memory_allocated`` is used instead.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from utils.reference import metric_learning as ml  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, embeddings: torch.Tensor, repeats: int, device: torch.device) -> tuple[float, float]:
    """Median seconds of forward + backward of ``fn(E)`` (after one warm-up) and the loss value."""
    E = embeddings.detach().clone().requires_grad_(True)
    loss = fn(E)
    loss.backward()
    times = []
    for _ in range(repeats):
        E.grad = None
        _sync(device)
        t0 = time.perf_counter()
        loss = fn(E)
        loss.backward()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), float(loss.detach())


def make_batch(n: int, dim: int, classes: int, device: torch.device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    labels = (torch.arange(n) % classes)[torch.randperm(n, generator=g)]
    centres = torch.randn(classes, dim, generator=g)
    E = (0.5 * centres[labels] + 0.5 * torch.randn(n, dim, generator=g)) / dim ** 0.5   # distances ~ 1 = margin
    return E.to(device), labels.to(device)


def _fmt_time(seconds: float, device: torch.device) -> str:
    return f"{seconds * 1e3:9.2f} ms" if device.type == "cuda" else ""


#: Operators that only make views or metadata (no kernel on a GPU).
_VIEW_OPS = {"aten::" + n for n in (
    "unsqueeze", "squeeze", "t", "numpy_T", "permute", "expand", "expand_as", "reshape", "view", "_unsafe_view",
    "_reshape_alias", "detach", "alias", "as_strided", "slice", "select", "transpose", "diagonal", "unbind", "split",
    "chunk", "narrow", "to", "_to_copy", "lift_fresh", "result_type", "empty", "resolve_conj", "resolve_neg",
    "contiguous")}
#: Operators that wait for the device (their output's size or value is read on the host).
_SYNC_OPS = {"aten::" + n for n in ("item", "_local_scalar_dense", "nonzero", "masked_select", "is_nonzero",
                                    "unique", "_unique2", "repeat_interleave")}


def op_counts(fn, embeddings: torch.Tensor) -> tuple[int, int]:
    """``(operators, host syncs)`` of one forward + backward of ``fn(E)`` on the CPU: top-level aten operators
    (those not called by another aten operator) that compute, and the operators that synchronise with a device."""
    from torch.profiler import ProfilerActivity, profile

    E = embeddings.detach().clone().requires_grad_(True)
    fn(E).backward()                                                       # warm-up
    E.grad = None
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn(E).backward()
    events = [e for e in prof.events() if e.name.startswith("aten::")]
    top = [e.name for e in events if e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")]
    return sum(n not in _VIEW_OPS for n in top), sum(e.name in _SYNC_OPS for e in events)


# ------------------------------------------------------------------------------------------------ memory child
def _proc_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _memory_child(n: int, dim: int, classes: int, device: str, which: str) -> dict:
    import resource

    dev = torch.device(device)
    E, labels = make_batch(n, dim, classes, dev)
    E.requires_grad_(True)
    small, small_labels = make_batch(32, dim, 4, dev)
    small.requires_grad_(True)
    if which == "course":
        fn = ml.lifted_structured_loss
    else:
        from pytorch_metric_learning import distances, losses
        pml = losses.LiftedStructureLoss(neg_margin=1.0, pos_margin=0.0, distance=distances.LpDistance(
            normalize_embeddings=False, p=2, power=1))
        fn = lambda e, y, m: pml(e, y)  # noqa: E731
    fn(small, small_labels, 1.0).backward()                        # warm-up: load kernels, allocator pools
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.max_memory_allocated()
        fn(E, labels, 1.0).backward()
        torch.cuda.synchronize()
        extra = torch.cuda.max_memory_allocated() - before
        method = "torch.cuda.max_memory_allocated delta"
    else:
        status = Path("/proc/self/status")
        if status.exists():
            # Reset the process's peak-RSS mark to the current RSS (writing 5 to clear_refs), run, read the peak.
            try:
                Path("/proc/self/clear_refs").write_text("5")
                reset = True
            except OSError:
                reset = False
            before = _proc_kib("VmRSS") if reset else _proc_kib("VmHWM")
            fn(E, labels, 1.0).backward()
            extra = (_proc_kib("VmHWM") - before) * 1024
            method = ("peak RSS (VmHWM) minus RSS before, peak mark reset, fresh process" if reset
                      else "peak RSS (VmHWM) delta in a fresh process")
        else:  # macOS: ru_maxrss is in bytes there
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            fn(E, labels, 1.0).backward()
            extra = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
            method = "ru_maxrss delta in a fresh process (a lower bound if the warm-up peaked higher)"
    return {"extra_bytes": int(extra), "method": method}


def peak_extra_memory(n: int, dim: int, classes: int, device: torch.device, which: str = "course") -> dict:
    cmd = [sys.executable, __file__, "--memory-child", json.dumps([n, dim, classes, str(device), which])]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=str(ROOT))
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats for the course's losses")
    parser.add_argument("--pml-repeats", type=int, default=3, help="timed repeats for PML (its lifted loss is slow)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--classes", type=int, default=16)
    parser.add_argument("--margin", type=float, default=1.0)
    parser.add_argument("--memory-n", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads for both sides (1 default: on a shared or small machine OpenMP "
                             "spin-waiting makes multi-threaded timings of small ops erratic)")
    parser.add_argument("--no-pml-memory", action="store_true",
                        help="skip measuring PML's lifted loss memory (about 5 GB at N=256)")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        print(json.dumps(_memory_child(*json.loads(args.memory_child))))
        return

    from pytorch_metric_learning import __version__ as pml_version
    from pytorch_metric_learning import distances, losses, miners, reducers

    device = torch.device(args.device)
    torch.set_num_threads(args.threads)  # the CPU triplet lines run on the CPU whatever --device says
    n, dim, classes, margin = args.n, args.dim, args.classes, args.margin
    E, labels = make_batch(n, dim, classes, device)
    lp = distances.LpDistance(normalize_embeddings=False, p=2, power=1)
    print(f"torch {torch.__version__}, pytorch-metric-learning {pml_version}, device {device}, "
          f"threads {torch.get_num_threads()}")
    print(f"batch: N={n}, D={dim}, {classes} classes of {n // classes}, margin {margin}; forward + backward, "
          f"median of {args.repeats} (course) / {args.pml_repeats} (PML) repeats\n")
    rows = []

    # -- lifted structured loss
    pml_lifted = losses.LiftedStructureLoss(neg_margin=margin, pos_margin=0.0, distance=lp)
    t_ours, v_ours = _timed(lambda e: ml.lifted_structured_loss(e, labels, margin), E, args.repeats, device)
    t_pml, v_pml = _timed(lambda e: pml_lifted(e, labels), E, args.pml_repeats, device)
    rows.append(("lifted structured (smooth)", "LiftedStructureLoss", t_ours, t_pml, v_ours, v_pml, "direct"))

    # -- triplet batch-all: on the CPU and, when CUDA is present, on the GPU (whatever --device says)
    n_triplets = len(ml.batch_all_triplets(labels))
    miner = miners.TripletMarginMiner(margin=margin, type_of_triplets="all", distance=lp)
    pml_triplet = losses.TripletMarginLoss(margin=margin, distance=lp, reducer=reducers.SumReducer())
    triplet_devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for dev in triplet_devices:
        E_dev, labels_dev = E.to(dev), labels.to(dev)
        t_ours, v_ours = _timed(lambda e: ml.batch_all_triplet_loss(e, labels_dev, margin), E_dev, args.repeats, dev)
        t_pml, v_pml = _timed(lambda e: pml_triplet(e, labels_dev, miner(e, labels_dev)), E_dev, args.pml_repeats,
                              dev)
        rows.append((f"triplet batch-all ({dev.type})", 'TripletMarginLoss + TripletMarginMiner("all")', t_ours,
                     t_pml, v_ours * n_triplets, v_pml, f"course x |T| (|T| = {n_triplets})", dev))
    if len(triplet_devices) == 1:
        print("(no CUDA here: the GPU triplet lines are skipped)\n")

    # -- the course's composable path (miner -> indices -> loss) for comparison
    t_idx, v_idx = _timed(lambda e: ml.triplet_loss_from_indices(e, ml.batch_all_triplets(labels), margin), E,
                          args.repeats, device)
    t_pml, v_pml = _timed(lambda e: pml_triplet(e, labels, miner(e, labels)), E, args.pml_repeats, device)
    rows.append(("triplet batch-all via indices", 'TripletMarginLoss + TripletMarginMiner("all")', t_idx, t_pml,
                 v_idx * n_triplets, v_pml, "course x |T|"))

    print(f"{'course loss':32s} {'PML':46s} {'speed-up':>9s}  {'values (course | PML)':>30s}  rel. diff")
    for name, pml_name, to, tp, vo, vp, how, *on in rows:
        dev = on[0] if on else device
        rel = abs(vo - vp) / max(abs(vp), 1e-12)
        print(f"{name:32s} {pml_name:46s} {tp / to:8.1f}x  {vo:14.6g} | {vp:<14.6g}  {rel:.1e}  ({how})")
        if dev.type == "cuda":
            print(f"{'':32s} course {_fmt_time(to, dev)}   PML {_fmt_time(tp, dev)}")

    # -- a GPU proxy that a CPU can measure: operators per forward + backward, and host synchronisations
    E_cpu, labels_cpu = E.cpu(), labels.cpu()
    print("\ntriplet batch-all, operators per forward + backward (torch.profiler on the CPU; views excluded: a GPU "
          "launches about one kernel per operator) and host syncs (each stalls a GPU's queue):")
    for name, fn in (
            ("course, CPU path (sorted prefix sums)", lambda e: ml.batch_all_triplet_loss(e, labels_cpu, margin)),
            ("course, GPU path (dense hinge, own backward)", lambda e: ml._BatchAllDense.apply(e, labels_cpu,
                                                                                               margin)),
            ('PML TripletMarginLoss + TripletMarginMiner("all")', lambda e: pml_triplet(e, labels_cpu,
                                                                                         miner(e, labels_cpu)))):
        ops, syncs = op_counts(fn, E_cpu)
        print(f"  {name:52s} {ops:4d} operators, {syncs} host syncs")

    # -- memory
    print(f"\npeak extra memory of the course's lifted loss, forward + backward, D={dim}, {classes} classes:")
    for m in sorted({n, args.memory_n}):
        mem = peak_extra_memory(m, dim, classes, device)
        print(f"  N={m:5d}: {mem['extra_bytes'] / 2**20:8.1f} MB   ({mem['method']})")
    if args.no_pml_memory:
        return
    mem = peak_extra_memory(n, dim, classes, device, which="pml")
    print(f"  PML LiftedStructureLoss at N={n}: {mem['extra_bytes'] / 2**20:8.1f} MB   ({mem['method']}); "
          f"at N={args.memory_n} it would need a ({args.memory_n * (args.memory_n // classes - 1)} x "
          f"{args.memory_n * (args.memory_n - args.memory_n // classes)}) pair matrix")


if __name__ == "__main__":
    main()
