"""Benchmark of the automatic assignment solver (not a test).

    .venv/bin/python bench/assignment.py [--only region|national] [--seed N]
                                          [--policy different|prefer_different|any]
                                          [--no-exact]

Two generated cases, deterministic for a seed, each over the six directions with a
realistic skew (technical 25 %, arts 22 %, social-humanitarian 20 %, physical culture 15 %,
natural science 10 %, tourism 8 %):

* region: 6,000 reviews needing 2 experts each, 167 experts, 27 municipalities, 300
  provider organizations (Smolensk's figures);
* national: 100,000 reviews, 5,000 experts, 2,000 municipalities, 20,000 organizations,
  one pool (harder than 85 separate regions).

Printed per case: generation and solve time, slots filled against the maximum (the
solver's own max flow) and against the trivial bound Σ_d min(demand_d, capacity_d), the
largest load against a per-direction water-filling lower bound and against the exact
optimum (bisection over max flows on the solver's network with blocks, a relaxation: its
L is a lower bound, exact when the plan reaches it; skip with ``--no-exact``), the
network's size (eligible pairs, arcs given to OR-Tools, rounds) and the peak memory of
the process.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ortools.graph.python import max_flow  # noqa: E402

from review_portal.assignment.eligibility import ExpertInfo, ReviewInfo  # noqa: E402
from review_portal.assignment.solver import build_network, flow_arcs, solve  # noqa: E402
from review_portal.enums import Direction, MunicipalityPolicy  # noqa: E402

#: Share of programs per direction.
DEMAND_SHARE = {
    Direction.TECHNICAL: 0.25,
    Direction.ARTS: 0.22,
    Direction.SOCIAL_HUMANITARIAN: 0.20,
    Direction.PHYSICAL_SPORTS: 0.15,
    Direction.NATURAL_SCIENCE: 0.10,
    Direction.TOURISM_LOCAL_HISTORY: 0.08,
}
#: Share of expert profiles per direction: tourism is short of experts.
EXPERT_SHARE = {**DEMAND_SHARE, Direction.TOURISM_LOCAL_HISTORY: 0.045}
DIRECTIONS = list(DEMAND_SHARE)
TODAY = date(2025, 9, 1)
PERIOD = (TODAY, TODAY + timedelta(days=14))


@dataclass(frozen=True)
class Case:
    name: str
    reviews: int
    experts: int
    municipalities: int
    organizations: int
    #: Mean expert capacity as a multiple of slots per expert (> 1: enough on the whole).
    capacity_margin: float = 1.1


CASES = {
    "region": Case("region", 6_000, 167, 27, 300),
    "national": Case("national", 100_000, 5_000, 2_000, 20_000),
}


def zipf(n: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return weights / weights.sum()


def generate(case: Case, seed: int) -> tuple[list[ReviewInfo], list[ExpertInfo]]:
    """A region: big towns with many programs and experts, small ones with few."""
    rng = np.random.default_rng(seed)
    n_mun, n_org = case.municipalities, case.organizations
    municipality_weight = zipf(n_mun, 1.0)
    org_municipality = rng.choice(n_mun, size=n_org, p=municipality_weight)
    org_weight = rng.lognormal(0.0, 1.0, n_org)
    org_weight /= org_weight.sum()
    org_inn = [f"67{i:08d}" for i in range(n_org)]
    orgs_in = defaultdict(list)
    for org, mun in enumerate(org_municipality.tolist()):
        orgs_in[mun].append(org)

    # Experts: mostly in the large towns; 1–2 directions; a third work at a provider.
    slots_per_expert = 2 * case.reviews / case.experts
    mean_capacity = case.capacity_margin * slots_per_expert
    low, high = round(mean_capacity * 0.5), round(mean_capacity * 1.5)
    share = np.array([EXPERT_SHARE[d] for d in DIRECTIONS])
    share /= share.sum()
    expert_mun = rng.choice(n_mun, size=case.experts, p=zipf(n_mun, 1.2))
    experts = []
    for i in range(case.experts):
        count = 1 if rng.random() < 0.6 else 2
        dirs = frozenset(DIRECTIONS[j] for j in rng.choice(6, size=count, replace=False, p=share))
        mun = int(expert_mun[i])
        home_id = home_inn = None
        if rng.random() < 0.35:
            local = orgs_in.get(mun)
            org = int(rng.choice(local)) if local else int(rng.integers(n_org))
            home_inn = org_inn[org]
            home_id = org if rng.random() < 0.9 else None  # some give only the ИНН
        capacity = int(rng.integers(low, high + 1))
        open_load = int(rng.integers(1, 6)) if rng.random() < 0.2 else 0
        unavailable: tuple = ()
        roll = rng.random()
        if roll < 0.04:  # on leave during the period
            start = TODAY + timedelta(days=int(rng.integers(0, 10)))
            unavailable = ((start, start + timedelta(days=14)),)
        elif roll < 0.07:  # on leave later
            start = TODAY + timedelta(days=int(rng.integers(30, 90)))
            unavailable = ((start, start + timedelta(days=14)),)
        experts.append(
            ExpertInfo(
                id=10_000_000 + i,
                directions=dirs,
                municipality_id=mun,
                home_organization_id=home_id,
                home_organization_inn=home_inn,
                capacity=capacity,
                open_load=open_load,
                active=rng.random() >= 0.03,
                unavailable=unavailable,
            )
        )
    of_direction = defaultdict(list)
    for expert in experts:
        for d in expert.directions:
            of_direction[d].append(expert.id)

    # Reviews: organizations by size; direction by the skew; a few re-reviews.
    review_org = rng.choice(n_org, size=case.reviews, p=org_weight)
    review_dir = rng.choice(6, size=case.reviews, p=[DEMAND_SHARE[d] for d in DIRECTIONS])
    reviews = []
    for i in range(case.reviews):
        org = int(review_org[i])
        d = DIRECTIONS[int(review_dir[i])]
        pool = of_direction[d]
        assigned = declined = previous = frozenset()
        roll = rng.random()
        if roll < 0.03:  # a re-review after revision: its earlier experts
            previous = frozenset(int(e) for e in rng.choice(pool, size=2, replace=False))
        elif roll < 0.05:  # one expert already on it (a replacement is due)
            assigned = frozenset({int(rng.choice(pool))})
        elif roll < 0.06:  # someone declined
            declined = frozenset({int(rng.choice(pool))})
        reviews.append(
            ReviewInfo(
                id=i + 1,
                direction=d,
                municipality_id=int(org_municipality[org]),
                organization_id=org,
                organization_inn=org_inn[org],
                needed=2 - len(assigned),
                assigned_expert_ids=assigned,
                declined_expert_ids=declined,
                previous_expert_ids=previous,
                period=PERIOD,
            )
        )
    return reviews, experts


def water_filling_bound(experts, direction, filled) -> int:
    """The smallest L such that the experts of ``direction`` have room for ``filled`` slots
    with nobody above L (ignores municipalities and the other directions: a lower bound)."""
    pool = [e for e in experts if e.active and e.free_capacity > 0 and direction in e.directions]
    low, high = 0, max((e.capacity for e in pool), default=0)
    while low < high:
        mid = (low + high) // 2
        if sum(max(0, min(e.capacity, mid) - e.open_load) for e in pool) >= filled:
            high = mid
        else:
            low = mid + 1
    return low


def exact_max_load(reviews, experts, policy, seed, filled, low, high) -> tuple[int, int]:
    """(maximum flow, smallest L keeping it) by bisection over max flows on the solver's
    network with blocks (the same classes and blocks; an independent flow computation).

    With blocks a class may take more than ``count(c)`` from an expert, so this network is
    a relaxation: its maximum flow is at least the solver's and its L at most the true
    optimum. The solver's plan reaching that L proves the plan's L optimal."""
    network = build_network(reviews, experts, policy, seed)
    classes, n_e = network.classes, len(network.experts)
    n_c = len(classes)
    graph = flow_arcs(network, network.free, 0)
    source = n_c + n_e + graph.blocks
    sink = source + 1
    flow = max_flow.SimpleMaxFlow()
    flow.add_arcs_with_capacity(
        np.full(n_c, source, dtype=np.int32),
        np.arange(n_c, dtype=np.int32),
        np.array([c.supply for c in classes], dtype=np.int64),
    )
    flow.add_arcs_with_capacity(graph.tails, graph.heads, graph.caps)
    first = flow.add_arcs_with_capacity(
        np.arange(n_c, n_c + n_e, dtype=np.int32),
        np.full(n_e, sink, dtype=np.int32),
        network.free,
    )
    del graph
    expert_arcs = np.arange(first[0], first[0] + n_e, dtype=np.int32)
    capacity = np.array([e.capacity for e in network.experts], dtype=np.int64)
    load = np.array([e.open_load for e in network.experts], dtype=np.int64)

    def run(limit: int | None) -> int:
        caps = network.free
        if limit is not None:
            caps = np.clip(np.minimum(capacity, limit) - load, 0, network.free)
        flow.set_arcs_capacity(expert_arcs, caps)
        assert flow.solve(source, sink) == flow.OPTIMAL
        return flow.optimal_flow()

    maximum = run(None)
    assert maximum >= filled, (maximum, filled)
    while low < high:
        mid = (low + high) // 2
        if run(mid) == maximum:
            high = mid
        else:
            low = mid + 1
    return maximum, low


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(case: Case, seed: int, policy: MunicipalityPolicy, exact: bool) -> None:
    print(
        f"== {case.name}: {case.reviews:,} reviews, {case.experts:,} experts, "
        f"{case.municipalities:,} municipalities, {case.organizations:,} organizations; "
        f"policy {policy.value}, seed {seed}"
    )
    started = time.perf_counter()
    reviews, experts = generate(case, seed)
    print(f"generation      {time.perf_counter() - started:8.2f} s")

    plan = solve(reviews, experts, policy, seed=seed)
    print(
        f"solve           {plan.seconds:8.2f} s  (network {plan.build_seconds:.2f} s, "
        f"OR-Tools {plan.solve_seconds:.2f} s, split and checks "
        f"{plan.seconds - plan.build_seconds - plan.solve_seconds:.2f} s)"
    )
    print(
        f"network         {plan.classes:,} review classes, {plan.arcs:,} eligible class→expert "
        f"pairs; {plan.flow_arcs:,} arcs given to OR-Tools (blocks), solved {plan.rounds}×"
    )

    demand_by = Counter()
    for r in reviews:
        demand_by[r.direction] += r.needed
    free_total = sum(e.free_capacity for e in experts if e.active)
    bound_total = 0
    print(
        f"{'direction':24}{'demand':>9}{'capacity':>10}{'min()':>9}{'filled':>9}"
        f"{'max load':>10}{'w-f bound':>11}"
    )
    bounds = {}
    for d in DIRECTIONS:
        cap = sum(e.free_capacity for e in experts if e.active and d in e.directions)
        trivial = min(demand_by[d], cap)
        bound_total += trivial
        bounds[d] = water_filling_bound(experts, d, plan.filled_by_direction.get(d, 0))
        print(
            f"{d.value:24}{demand_by[d]:9,}{cap:10,}{trivial:9,}"
            f"{plan.filled_by_direction.get(d, 0):9,}"
            f"{plan.max_load_by_direction.get(d, 0):10}{bounds[d]:11}"
        )
    trivial_total = min(bound_total, free_total)
    print(
        f"filled          {plan.filled:,} of {plan.demand:,} slots; maximum possible "
        f"{plan.filled:,} (max flow); trivial bound {trivial_total:,} "
        f"(Σ min(demand, capacity) per direction, ≤ free capacity {free_total:,})"
    )
    lower = max(bounds.values(), default=0)
    added = Counter(e for ids in plan.assignments.values() for e in ids)
    full = sum(1 for e in experts if e.id in added and plan.loads[e.id] >= e.capacity)
    print(
        f"largest load    {plan.max_new_load} (experts given work; {plan.max_load} with "
        f"existing loads); lower bound {lower} (water-filling per direction, for "
        f"these fills per direction); "
        f"{full:,} of {len(added):,} experts given work are now at capacity"
    )
    if exact:
        t = time.perf_counter()
        maximum, optimum = exact_max_load(
            reviews, experts, policy, seed, plan.filled, 0, plan.max_new_load
        )
        exact = maximum == plan.filled and optimum == plan.max_new_load
        print(
            f"exact optimum   {optimum}{'' if exact else ' (a lower bound only)'} "
            f"(max flow {maximum:,}{' confirmed' if maximum == plan.filled else ''}; "
            f"bisection {time.perf_counter() - t:.1f} s)"
        )
    print(
        f"previous kept   {plan.previous_kept:,} slots to previous experts of "
        f"{sum(len(r.previous_expert_ids) > 0 for r in reviews):,} re-reviews; "
        f"own municipality {plan.same_municipality:,}"
    )
    print(f"peak memory     {peak_memory_mb():,.0f} MB (process so far)")
    print()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(CASES))
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument(
        "--policy",
        default=MunicipalityPolicy.DIFFERENT.value,
        choices=[p.value for p in MunicipalityPolicy],
    )
    parser.add_argument("--no-exact", action="store_true", help="skip the exact optimum")
    args = parser.parse_args(argv)
    names = [args.only] if args.only else ["region", "national"]
    for name in names:
        run_case(CASES[name], args.seed, MunicipalityPolicy(args.policy), not args.no_exact)


if __name__ == "__main__":
    main()
