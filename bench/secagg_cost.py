"""What the SecAgg+ protocol costs: compute per client and for the server, bytes per client.

Grid: cohorts {10, 100, 1000} x dimensions {10^3 .. 10^6}, 16 bits, no dropout and 10% of the
cohort dropping before the masked upload (the costly case: the server rebuilds their mask keys
and regenerates their pair masks). Two graphs: SecAgg+ with k = 2 * ceil(log2 n) neighbours
(even by construction; the smallest even k >= 2 log2 n) and t = k/2 + 1, and the complete graph
of the original protocol ("all", t = (n - 1)/2 + 1) for cohorts up to 100. A second table holds
the dimension fixed and grows the cohort, to show the server's time growing like n log n with
SecAgg+ and like n^2 with all.

All parties run in this one process, one after another, on this machine; "client seconds" is the
mean compute of one client over its four steps, "server seconds" the server's compute. Inputs are
produced lazily (one client at a time, outside the clocks) and every cell's total is checked
against the plain modular sum of the inputs that were uploaded.

    uv run python bench/secagg_cost.py [--quick] [--budget SECONDS] [--json FILE] [--markdown FILE]

The full run writes bench/results/secagg_cost.{json,md}; --quick (a small grid, < 1 min) writes
nothing unless --json/--markdown say where.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from secure_agg import parameters as secagg_parameters
from secure_agg.crypto import KEY_BYTES
from secure_agg.messages import SEALED_PAIR_BYTES
from secure_agg.modular import modulus
from secure_agg.secagg import Dropouts, secure_sum
from secure_agg.shamir import SHARE_BYTES

BITS = 16
DROPOUT = 0.10
FULL = {
    "cohorts": (10, 100, 1000),
    "dims": (10**3, 10**4, 10**5, 10**6),
    "all_max_cohort": 100,
    "scaling_dim": 10**4,
    "scaling": {"secagg+": (50, 100, 200, 400, 800, 1600), "all": (50, 100, 200, 400)},
    "scaling_repeats": 3,
    "budget_seconds": 1100.0,
}
QUICK = {
    "cohorts": (10, 100),
    "dims": (10**3, 10**4),
    "all_max_cohort": 100,
    "scaling_dim": 10**3,
    "scaling": {"secagg+": (25, 50, 100, 200), "all": (25, 50, 100)},
    "scaling_repeats": 1,
    "budget_seconds": 50.0,
}
RESULTS = Path(__file__).parent / "results"
# Bonawitz et al. (CCS 2017), abstract: 1.73x communication expansion for 2^10 users and 2^20
# dimensions, against sending the data in the clear.
BONAWITZ_EXPANSION = 1.73


class RandomInputs(Sequence):
    """Uniform 16-bit client vectors, made one at a time from (seed, client): O(dim) memory."""

    def __init__(self, cohort: int, dim: int, seed: int) -> None:
        self.cohort, self.dim, self.seed = cohort, dim, seed

    def __len__(self) -> int:
        return self.cohort

    def __getitem__(self, client: int) -> np.ndarray:
        if not 0 <= client < self.cohort:
            raise IndexError(client)
        rng = np.random.default_rng([self.seed, client])
        return rng.integers(0, modulus(BITS), self.dim, dtype=np.uint16)

    def modular_sum(self, clients: Sequence[int]) -> np.ndarray:
        total = np.zeros(self.dim, np.uint64)
        for client in clients:
            total += self[client]  # < 1000 * 2^16: no overflow before the final reduction
        return total % np.uint64(modulus(BITS))


def run_cell(cohort: int, dim: int, graph: str, dropout: float, seed: int) -> dict:
    k, t = secagg_parameters.plan(cohort, "auto" if graph == "secagg+" else "all", "auto")
    rng = np.random.default_rng(seed)
    dropped = rng.choice(cohort, size=round(dropout * cohort), replace=False)
    inputs = RandomInputs(cohort, dim, seed)
    start = time.perf_counter()
    result = secure_sum(
        inputs,
        bits=BITS,
        neighbours=k,
        threshold=t,
        dropouts=Dropouts(before_upload=dropped.tolist()),
        graph_rng=rng,
    )
    wall = time.perf_counter() - start
    if not np.array_equal(result.total, inputs.modular_sum(result.uploaded)):
        raise AssertionError(f"wrong total: cohort {cohort}, dim {dim}, {graph}, {dropout}")
    cost = result.cost
    return {
        "cohort": cohort,
        "dim": dim,
        "graph": graph,
        "k": result.neighbours,
        "t": result.threshold,
        "dropout": dropout,
        "uploaded": len(result.uploaded),
        "client_seconds": cost.client_seconds,
        "server_seconds": cost.server_seconds,
        "upload_bytes_mean": cost.upload_bytes_mean,
        "upload_bytes_max": cost.upload_bytes_max,
        "download_bytes_mean": cost.download_bytes_mean,
        "download_bytes_max": cost.download_bytes_max,
        "expansion": cost.expansion,
        "wall_seconds": wall,
    }


def grid_cells(config: dict) -> list[tuple[int, int, str, float]]:
    cells = [
        (n, d, graph, dropout)
        for n in config["cohorts"]
        for d in config["dims"]
        for graph in ("secagg+", "all")
        if graph == "secagg+" or n <= config["all_max_cohort"]
        for dropout in (0.0, DROPOUT)
    ]
    return sorted(cells, key=lambda c: c[0] * c[1])  # cheapest first: the budget cuts the top


def human_bytes(value: float) -> str:
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.2f} {unit}"
    return f"{value:.0f} B"


def grid_table(rows: list[dict]) -> list[str]:
    lines = [
        "| cohort | dim | graph (k, t) | dropout | client s | server s | upload / client "
        "| download / client | expansion |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        graph = f"{r['graph']} ({r['k']}, {r['t']})"
        lines.append(
            f"| {r['cohort']} | {r['dim']:.0e} | {graph} | {r['dropout']:.0%} "
            f"| {r['client_seconds']:.4f} | {r['server_seconds']:.3f} "
            f"| {human_bytes(r['upload_bytes_mean'])} | {human_bytes(r['download_bytes_mean'])} "
            f"| {r['expansion']:.4f} |"
        )
    return lines


def scaling_table(rows: list[dict]) -> list[str]:
    lines = [
        "| graph | cohort | k | server s | server s / (n log2 n) | server s / n^2 | client s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        n = r["cohort"]
        lines.append(
            f"| {r['graph']} | {n} | {r['k']} | {r['server_seconds']:.4f} "
            f"| {r['server_seconds'] / (n * math.log2(n)) * 1e6:.2f} µs "
            f"| {r['server_seconds'] / n**2 * 1e6:.3f} µs | {r['client_seconds']:.4f} |"
        )
    return lines


def growth_exponents(rows: list[dict]) -> dict[str, float]:
    """Least-squares slope of log(server seconds) against log(n), per graph."""
    slopes = {}
    for graph in ("secagg+", "all"):
        points = [
            (math.log(r["cohort"]), math.log(r["server_seconds"]))
            for r in rows
            if r["graph"] == graph
        ]
        if len(points) >= 2:
            x, y = np.array(points).T
            slopes[graph] = float(np.polyfit(x, y, 1)[0])
    return slopes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small grid, under a minute")
    parser.add_argument("--budget", type=float, help="seconds; later (larger) cells are skipped")
    parser.add_argument("--json", type=Path, help="raw numbers (default for a full run: results/)")
    parser.add_argument("--markdown", type=Path, help="the tables (default for a full run)")
    args = parser.parse_args()
    config = QUICK if args.quick else FULL
    budget = args.budget if args.budget is not None else config["budget_seconds"]
    json_path = args.json or (None if args.quick else RESULTS / "secagg_cost.json")
    markdown_path = args.markdown or (None if args.quick else RESULTS / "secagg_cost.md")

    started = time.perf_counter()
    # The scaling sweep first (it is what the second table needs whole), then the grid.
    scaling, skipped = [], []
    for graph, cohorts in config["scaling"].items():
        for n in cohorts:
            runs = [
                run_cell(n, config["scaling_dim"], graph, DROPOUT, seed=repeat)
                for repeat in range(config["scaling_repeats"])
            ]
            median = dict(runs[0])
            for key in ("client_seconds", "server_seconds", "wall_seconds"):
                median[key] = statistics.median(r[key] for r in runs)
            scaling.append(median)
            print(f"scaling {graph:8} n={n:5}: server {median['server_seconds']:.4f} s", flush=True)

    grid = []
    for n, d, graph, dropout in grid_cells(config):
        elapsed = time.perf_counter() - started
        if elapsed > budget:
            skipped.append({"cohort": n, "dim": d, "graph": graph, "dropout": dropout})
            continue
        row = run_cell(n, d, graph, dropout, seed=n + d)
        grid.append(row)
        print(
            f"n={n:5} dim={d:8} {graph:8} dropout={dropout:.0%}: wall {row['wall_seconds']:.1f} s",
            flush=True,
        )
    grid.sort(key=lambda r: (r["cohort"], r["dim"], r["graph"] != "secagg+", r["dropout"]))
    total_seconds = time.perf_counter() - started

    slopes = growth_exponents(scaling)
    cohorts = config["scaling"]["secagg+"]
    reference_slopes = {
        "n log n": float(
            np.polyfit(np.log(cohorts), np.log([n * math.log2(n) for n in cohorts]), 1)[0]
        )
    }
    # Keys, then per neighbour a sealed share pair out and one revealed share back.
    all_overhead = 2 * KEY_BYTES + 999 * (4 + SEALED_PAIR_BYTES + 4 + 1 + SHARE_BYTES)
    largest = max(grid, key=lambda r: (r["cohort"] * r["dim"], r["dropout"]))
    lines = [
        "# SecAgg+ protocol cost",
        "",
        f"{BITS} bits; dropout = share of the cohort dropping before the masked upload; "
        "SecAgg+ k = 2 ceil(log2 n), t = k/2 + 1 (for n = 10, k = 8 < n - 1: still sparse); "
        "all: complete graph, t = (n - 1)/2 + 1. Seconds are compute of one process on "
        f"{platform.processor() or platform.machine()}, all parties in turn; bytes are what "
        "crosses the wire per client (mean over the cohort, dropped clients included); "
        "expansion = mean bytes uploaded per uploading client / the packed vector "
        f"(dim * {BITS} / 8 bytes). Every total was checked against the plain modular sum.",
        "",
        *grid_table(grid),
        "",
    ]
    if skipped:
        names = ", ".join(
            f"n={s['cohort']} dim={s['dim']:.0e} {s['graph']} {s['dropout']:.0%}" for s in skipped
        )
        lines += [f"Skipped to stay within the {budget:.0f} s budget: {names}.", ""]
    lines += [
        f"## Server time against cohort size (dim {config['scaling_dim']:.0e}, "
        f"{DROPOUT:.0%} dropout, median of {config['scaling_repeats']})",
        "",
        *scaling_table(scaling),
        "",
        "Fitted exponent of server seconds in n: "
        + ", ".join(f"{g} {s:.2f}" for g, s in slopes.items())
        + f" (over the same cohorts n log n would fit {reference_slopes['n log n']:.2f}, "
        "n^2 would fit 2.00). With all, each client's Shamir sharing is O(n t), so simulating "
        "the whole cohort costs O(n^3) of client compute; that is why the all column stops at "
        f"n = {max(config['scaling']['all'])}.",
        "",
        "## Against Bonawitz et al.",
        "",
        f"Bonawitz et al. report {BONAWITZ_EXPANSION}x communication expansion at 2^10 users x "
        "2^20 dimensions, counting keys and shares, against sending the raw entries in the "
        f"clear. Our nearest cell (n={largest['cohort']}, dim={largest['dim']:.0e}, "
        f"{largest['graph']}, {largest['dropout']:.0%} dropout) has expansion "
        f"{largest['expansion']:.4f}: keys, sealed shares and unmasking shares are "
        "O(k) records of tens of bytes, negligible next to a 2 MB vector. The difference is "
        "mostly not the protocol but what is compared: as we read the paper, their masked "
        "entries are wider than the raw ones (the field must hold the sum of all users), while "
        "here the input is already an element of Z_(2^16), with the sum's headroom chosen "
        "by the distributed-DP mechanism inside those 16 bits, so the masked vector costs "
        "exactly what the plain one does (bit-packed), and only the O(k) overhead remains. "
        f"With all n - 1 neighbours at n = 1000 that overhead would be "
        f"{human_bytes(all_overhead)} per client ({1 + all_overhead / 2e6:.2f}x at 10^6 "
        "dimensions).",
        "",
        f"Run time: {total_seconds:.0f} s.",
    ]
    markdown = "\n".join(lines) + "\n"
    print()
    print(markdown)

    payload = {
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "bits": BITS,
        "dropout": DROPOUT,
        "config": {k: v for k, v in config.items()},
        "grid": grid,
        "skipped": skipped,
        "scaling": scaling,
        "scaling_exponents": slopes,
        "reference_exponents": reference_slopes,
        "total_seconds": total_seconds,
    }
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(payload, indent=2) + "\n")
    if markdown_path:
        markdown_path.parent.mkdir(parents=True, exist_ok=True)
        markdown_path.write_text(markdown)


if __name__ == "__main__":
    main()
