"""The automatic assignment: all open reviews at once, as one min-cost flow (HotCRP's method).

Pure: plain data in (:class:`ReviewInfo`, :class:`ExpertInfo` snapshots), a :class:`Plan`
out; no Flask, no database. The flow is solved by Google OR-Tools' ``SimpleMinCostFlow``.

The network
-----------
::

    class c ──cap count(c), cost pref(c, e)──▶ expert e ──unit arcs, convex cost──▶ sink
    (supply needed × count(c))

A *class* is a set of reviews that are interchangeable for the solver: the same direction
and number of experts needed, the same set of excluded candidates (municipality under the
``different`` policy, home organization by id or ИНН, unavailability in the review's
period, declined, a declared conflict of interest with the program or its organization,
or already on the review), the same penalised candidates (own
municipality under ``prefer_different``) and the same preferred candidates (previous
experts of a re-review). Only candidates of the review's direction count, so two
municipalities without a local expert of the direction fall into one class, and a program
whose organization employs no expert is not told apart from its neighbours. Reviews with
declined, assigned or previous experts almost always form their own class. Eligibility is
therefore the candidate set of the class: active experts with free capacity and the
direction, minus the exclusions — exactly :func:`ineligibility_reasons` ``== []`` (the
property tests compare the two for every pair, and :func:`solve` re-checks every pair of
the plan with :func:`ineligibility_reasons` itself).

The arc class → expert has capacity ``count(c)``: an expert takes at most one slot of each
review, hence at most ``count(c)`` slots of the class. That is also *enough* to split the
class's flow back onto its reviews with distinct experts: number the slots round-robin
(review 1 slot 1, review 2 slot 1, …, review k slot 1, review 1 slot 2, …; reviews by id)
and give each expert a contiguous run of as many slots as its flow. A run of at most ``k``
consecutive slots meets ``k`` different reviews, so no review gets an expert twice (every
review of a class needs the same number of experts, which is why ``needed`` is part of the
class). A partly filled class fills first slots before second ones, so its reviews differ
by at most one expert, and the older reviews come first.

Expert → sink is ``free_capacity`` unit arcs; the ``j``-th costs the growth of the
square of the expert's *total* load, ``(l + j)² − (l + j − 1)² = 2(l + j) − 1``, where ``l``
is the open load now. The marginal costs increase, so the flow takes them in order.

Priorities (lexicographic)
--------------------------
1. Fill as many slots as possible: ``solve_max_flow_with_min_cost`` finds a maximum flow
   and, among maximum flows only, the cheapest one — no big-M needed.
2. Among those, keep as many previous experts of a re-review as possible (the same
   experts are preferred for the re-review when still eligible). They know the
   program and the remarks the revision answers, so continuity comes before load: a
   previous expert with one open assignment is kept rather than a newcomer with none (an
   expert the rules exclude, for example by a declared conflict, is never a candidate).
   Capacity still bounds them, and never at the cost of an unfilled slot.
3. Among those, minimise the sum of squared total loads. An integral minimiser of a
   separable square sum over the expert-side load vectors of maximum flows (an M-convex
   set) is decreasingly minimal: the largest load is as small as it can be, then the
   number of experts carrying it, then the next load, and so on; no expert's load can be
   lowered without raising another's to at least the same level. It is also least
   majorised, so without re-reviews the largest load of the experts given work is the
   smallest ``L`` for which capacities ``min(capacity, L) − open load`` still fill the
   maximum (the property tests check exactly that). Within one direction the largest load
   may stay above what that direction alone could reach when its experts also carry a
   direction short of experts: relieving them would load someone else at least as much.
4. Among those, under ``prefer_different``, avoid the program's own municipality (+1 per
   slot).

Costs are int64: ``W · (2(l + j) − 1)`` on the expert arcs; on a class arc, the
municipality penalty (0 or 1) plus ``K`` unless the expert is a previous one. Two maximum
flows keeping as many previous experts and with different square sums differ by at least
``W`` in cost, while their penalties differ by at most ``F`` (``F`` = slots of a maximum
flow): with ``W = F + 1`` step 4 never buys a worse step 3. For step 2 over step 3, compare
an optimal flow with one keeping more previous experts: their difference splits into
simple cycles of the residual network, one of which keeps at least one more previous
expert. A simple cycle passes the sink once, so it uses at most two expert → sink arcs
(each at most ``W·U``, ``U`` the largest marginal square) and at most one class arc per
node (penalty ≤ 1 each): with ``K = 2·W·U + nodes + 1`` that cycle would be cheaper, so an
optimum keeps the most. For the national case (``F`` ≈ 2·10⁵, capacities ≤ 10²) arc
costs stay ≲ 10⁸, far from int64 limits even after OR-Tools scales them by the number of
nodes.

Blocks
------
The network above has one arc per eligible (class, expert) pair: 8.5 million nationally,
mostly of the thousands of one-review classes (a re-review, a replacement), which OR-Tools
holds at about 90 bytes an arc. :func:`flow_arcs` hands OR-Tools a smaller relaxation:
each direction's candidates, in a fixed order (experts with absences last, then by
municipality and home organization, so what a class excludes is mostly whole runs), are
cut into blocks of :data:`BLOCK`, and a class reaches a block where every expert is a
candidate at one same cost through a single arc ``class → block`` (that cost) and the
shared arcs ``block → expert`` (free); its other candidates keep their own arcs. Every
path costs what the direct arc costs and reaches the same candidates; only the cap
``count(c)`` per expert is lost inside a block. So the relaxed optimum costs at most the
direct one, and when :func:`_split_blocks` can split each block's flows onto its experts
within those caps, the result is a flow of the direct network with that cost and value:
an optimum of the direct network, with all the properties above. When a block cannot be
split, its classes whose cap may bind get direct arcs and the flow is solved again (after
:data:`MAX_BLOCK_ROUNDS` rounds every such class does, so the last network is at most the
direct one). Nationally: 1.0 million arcs, one round (two under ``prefer_different``).

Determinism: experts are put in an order shuffled by ``random.Random(seed)`` (their node
numbers and the order of the runs in a class); reviews keep their id order. The same
input and seed build the same networks and splits, and OR-Tools is deterministic on
them, so the plan is the same; another seed may pick another, equally optimal plan.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Sequence, Set
from dataclasses import dataclass, field

import numpy as np
from ortools.graph.python import max_flow, min_cost_flow

from review_portal.assignment.eligibility import ExpertInfo, ReviewInfo, ineligibility_reasons
from review_portal.enums import Direction, MunicipalityPolicy

#: Per-slot cost of step 4: an expert of the program's own municipality (``prefer_different``).
OWN_MUNICIPALITY_PENALTY = 1


def load_weight(flow_bound: int) -> int:
    """``W``: one unit of the square sum of loads outweighs every municipality penalty."""
    return OWN_MUNICIPALITY_PENALTY * flow_bound + 1


def stranger_cost(weight: int, largest_marginal: int, nodes: int) -> int:
    """``K``: one more previous expert kept outweighs any change of loads and penalties
    along a simple cycle of the network (see the module docstring)."""
    return 2 * weight * largest_marginal + OWN_MUNICIPALITY_PENALTY * nodes + 1


@dataclass
class Plan:
    #: Review id → the NEW experts for it (only reviews that got someone).
    assignments: dict[int, tuple[int, ...]]
    #: Expert id → open load after the plan, for every expert with a load.
    loads: dict[int, int]
    #: Slots filled by the plan.
    filled: int
    #: Slots asked for (the sum of ``needed``).
    demand: int
    #: The largest open load after the plan, over all experts (existing loads included).
    max_load: int = 0
    #: The largest load after the plan of an expert who received new work (the optimum
    #: of step 3: as small as any plan filling ``filled`` slots and keeping
    #: ``previous_kept`` previous experts allows).
    max_new_load: int = 0
    #: Per direction, the largest load after the plan of an expert given work in it.
    max_load_by_direction: dict[Direction, int] = field(default_factory=dict)
    #: Slots filled per direction.
    filled_by_direction: dict[Direction, int] = field(default_factory=dict)
    #: Slots given to a previous expert of the program / to an expert of its municipality.
    previous_kept: int = 0
    same_municipality: int = 0
    #: Size of the network: review classes and eligible class → expert pairs; the arcs
    #: given to OR-Tools (pairs gathered into blocks) and how many times it solved.
    classes: int = 0
    arcs: int = 0
    flow_arcs: int = 0
    rounds: int = 0
    #: Seconds: building the network (and splitting block flows), the OR-Tools solves,
    #: everything.
    build_seconds: float = 0.0
    solve_seconds: float = 0.0
    seconds: float = 0.0


@dataclass
class ReviewClass:
    """Interchangeable reviews (see the module docstring) and their candidates."""

    direction: Direction
    needed: int
    reviews: list[ReviewInfo]
    #: Candidate expert indices (ascending, i.e. in the seed's expert order).
    eligible: np.ndarray
    #: Per-slot municipality penalty for each candidate (step 4).
    costs: np.ndarray
    #: Which candidates are previous experts of the class's reviews (step 2).
    kept: np.ndarray

    @property
    def count(self) -> int:
        return len(self.reviews)

    @property
    def supply(self) -> int:
        return self.needed * len(self.reviews)


@dataclass
class Network:
    """The aggregated flow problem, before costs of load (reused by the benchmark)."""

    experts: list[ExpertInfo]  # in the seed's order; an index is a position here
    classes: list[ReviewClass]
    #: Free capacity of each expert (0 when not a candidate at all).
    free: np.ndarray
    demand: int
    #: Per direction, its candidate experts (indices), those with absences last, then by
    #: municipality and home organization: the order of the solver's blocks (see
    #: :func:`flow_arcs`).
    pools: dict[Direction, np.ndarray] = field(default_factory=dict)


def build_network(
    reviews: Sequence[ReviewInfo],
    experts: Sequence[ExpertInfo],
    policy: MunicipalityPolicy = MunicipalityPolicy.DIFFERENT,
    seed: int = 0,
) -> Network:
    """Group ``reviews`` into classes with their eligible experts (the rules of
    :func:`ineligibility_reasons`, applied by sets)."""
    policy = MunicipalityPolicy(policy)
    ordered = sorted(experts, key=lambda e: e.id)
    random.Random(seed).shuffle(ordered)
    n = len(ordered)
    free = np.zeros(n, dtype=np.int64)
    index: dict[int, int] = {}
    by_direction: dict[Direction, list[int]] = defaultdict(list)
    by_municipality: dict[int, list[int]] = defaultdict(list)
    by_org: dict[int, list[int]] = defaultdict(list)
    by_inn: dict[str, list[int]] = defaultdict(list)
    with_absences: list[int] = []
    for i, expert in enumerate(ordered):
        if not expert.active or expert.free_capacity <= 0 or not expert.directions:
            continue  # NOT_ACTIVE, AT_CAPACITY or DIRECTION for every review
        free[i] = expert.free_capacity
        index[expert.id] = i
        for direction in expert.directions:
            by_direction[direction].append(i)
        by_municipality[expert.municipality_id].append(i)
        if expert.home_organization_id is not None:
            by_org[expert.home_organization_id].append(i)
        if expert.home_organization_inn:
            by_inn[expert.home_organization_inn].append(i)
        if expert.unavailable:
            with_absences.append(i)
    candidates = {d: np.array(ids, dtype=np.int32) for d, ids in by_direction.items()}
    pools = {
        d: np.array(
            sorted(
                ids,
                key=lambda i: (
                    bool(ordered[i].unavailable),
                    ordered[i].municipality_id,
                    ordered[i].home_organization_id is None,
                    ordered[i].home_organization_id or 0,
                    i,
                ),
            ),
            dtype=np.int32,
        )
        for d, ids in sorted(by_direction.items())
    }
    directions = [e.directions for e in ordered]

    def of_direction(ids, direction) -> frozenset[int]:
        return frozenset(i for i in ids if direction in directions[i])

    local: dict[tuple, frozenset[int]] = {}
    employing: dict[tuple, frozenset[int]] = {}
    absent: dict[tuple, frozenset[int]] = {}
    classes: dict[tuple, ReviewClass] = {}
    demand = 0
    for review in sorted(reviews, key=lambda r: r.id):
        if review.needed <= 0:
            continue
        demand += review.needed
        d = review.direction
        own_key = (d, review.municipality_id)
        if own_key not in local:
            local[own_key] = of_direction(by_municipality.get(review.municipality_id, ()), d)
        own = local[own_key]
        org_key = (d, review.organization_id, review.organization_inn or None)
        if org_key not in employing:
            ids = list(by_org.get(review.organization_id, ()))
            if review.organization_inn:
                ids += by_inn.get(review.organization_inn, ())
            employing[org_key] = of_direction(ids, d)
        period_key = (d, review.period)
        if period_key not in absent:
            absent[period_key] = of_direction(
                (i for i in with_absences if not ordered[i].available_during(*review.period)),
                d,
            )
        excluded = employing[org_key] | absent[period_key]
        if policy == MunicipalityPolicy.DIFFERENT:
            excluded |= own
        on_review = (
            review.assigned_expert_ids
            | review.declined_expert_ids
            | review.conflict_expert_ids
            | review.barred_expert_ids
        )
        if on_review:
            excluded |= of_direction((index[e] for e in on_review if e in index), d)
        penalised = own - excluded if policy == MunicipalityPolicy.PREFER_DIFFERENT else frozenset()
        preferred = (
            of_direction((index[e] for e in review.previous_expert_ids if e in index), d) - excluded
        )
        key = (d, review.needed, excluded, penalised, preferred)
        found = classes.get(key)
        if found is None:
            pool = candidates.get(d, np.zeros(0, dtype=np.int32))
            if excluded:
                pool = np.setdiff1d(pool, np.fromiter(excluded, dtype=np.int32), True)
            costs = np.zeros(len(pool), dtype=np.int8)
            if penalised:
                costs[np.searchsorted(pool, sorted(penalised))] = OWN_MUNICIPALITY_PENALTY
            kept = np.zeros(len(pool), dtype=bool)
            if preferred:
                kept[np.searchsorted(pool, sorted(preferred))] = True
            classes[key] = ReviewClass(d, review.needed, [review], pool, costs, kept)
        else:
            found.reviews.append(review)
    return Network(ordered, list(classes.values()), free, demand, pools)


#: Experts per block: a class reaches a whole block of candidates through one arc.
BLOCK = 16
#: Solves with blocks before every class whose cap may bind gets direct arcs.
MAX_BLOCK_ROUNDS = 3


@dataclass
class FlowArcs:
    """The arcs given to OR-Tools, in three runs: class → expert (``pair_*``), class →
    block (``block_*``) and block → expert (``member_*``); expert → sink arcs come after."""

    tails: np.ndarray
    heads: np.ndarray
    caps: np.ndarray
    costs: np.ndarray
    pair_class: np.ndarray
    pair_expert: np.ndarray
    block_class: np.ndarray
    block_id: np.ndarray
    member_block: np.ndarray
    member_expert: np.ndarray
    blocks: int

    @property
    def arcs(self) -> int:
        return len(self.tails)


def flow_arcs(
    network: Network, units: np.ndarray, stranger: int, direct: Set[int] = frozenset()
) -> FlowArcs:
    """The class side of the flow network, with candidates gathered into blocks (see
    "Blocks" in the module docstring): arcs ``class → expert`` (cap ``count(c)``), ``class →
    block`` (cap ``min(supply, count(c) × block size)``) and ``block → expert`` (cap
    ``units``); the classes in ``direct`` get only direct arcs. Nationally about a tenth
    of the arcs of the direct network.
    """
    classes, n_classes, n_experts = network.classes, len(network.classes), len(network.experts)
    where: dict[Direction, tuple[np.ndarray, int, np.ndarray]] = {}
    members: list[np.ndarray] = []
    for d, pool in network.pools.items():
        position = np.full(n_experts, -1, dtype=np.int32)
        position[pool] = np.arange(len(pool), dtype=np.int32)
        sizes = np.diff(np.append(np.arange(0, len(pool), BLOCK), len(pool)))
        where[d] = (position, len(members), sizes)
        members.extend(pool[k : k + BLOCK] for k in range(0, len(pool), BLOCK))
    pair_class, pair_expert, pair_caps, pair_costs = [], [], [], []
    block_class, block_id, block_caps, block_costs = [], [], [], []
    for c, cls in enumerate(classes):
        eligible = cls.eligible
        if not len(eligible):
            continue
        prefs = cls.costs.astype(np.int64) + np.where(cls.kept, 0, stranger)
        mine = np.ones(len(eligible), dtype=bool)
        if c not in direct:
            position, first, sizes = where[cls.direction]
            block = position[eligible] // BLOCK
            candidates = np.bincount(block, minlength=len(sizes))
            kept = np.bincount(block, weights=cls.kept, minlength=len(sizes))
            penalised = np.bincount(block, weights=cls.costs, minlength=len(sizes))
            whole = (
                (candidates == sizes)
                & (kept == 0)
                & ((penalised == 0) | (penalised == sizes * OWN_MUNICIPALITY_PENALTY))
                & (sizes > 1)
            )
            mine = ~whole[block]
            used = np.flatnonzero(whole)
            block_class.append(np.full(len(used), c, dtype=np.int32))
            block_id.append((used + first).astype(np.int32))
            block_caps.append(np.minimum(cls.supply, cls.count * sizes[used]))
            block_costs.append(stranger + (penalised[used] > 0) * OWN_MUNICIPALITY_PENALTY)
        pair_class.append(np.full(int(mine.sum()), c, dtype=np.int32))
        pair_expert.append(eligible[mine].astype(np.int32))
        pair_caps.append(np.full(int(mine.sum()), cls.count, dtype=np.int64))
        pair_costs.append(prefs[mine])

    def joined(parts, dtype):
        return np.concatenate([*parts, np.zeros(0, dtype=dtype)]).astype(dtype, copy=False)

    pair_class, pair_expert = joined(pair_class, np.int32), joined(pair_expert, np.int32)
    block_class, block_id = joined(block_class, np.int32), joined(block_id, np.int32)
    reached = np.unique(block_id)
    member_block = joined(
        [np.full(len(members[b]), b, dtype=np.int32) for b in reached.tolist()], np.int32
    )
    member_expert = joined([members[b] for b in reached.tolist()], np.int32)
    first_block = n_classes + n_experts
    return FlowArcs(
        tails=np.concatenate([pair_class, block_class, member_block + first_block]),
        heads=np.concatenate(
            [pair_expert + n_classes, block_id + first_block, member_expert + n_classes]
        ),
        caps=np.concatenate(
            [joined(pair_caps, np.int64), joined(block_caps, np.int64), units[member_expert]]
        ),
        costs=np.concatenate(
            [
                joined(pair_costs, np.int64),
                joined(block_costs, np.int64),
                np.zeros(len(member_block), dtype=np.int64),
            ]
        ),
        pair_class=pair_class,
        pair_expert=pair_expert,
        block_class=block_class,
        block_id=block_id,
        member_block=member_block,
        member_expert=member_expert,
        blocks=len(members),
    )


def _split_blocks(
    graph: FlowArcs, flows: np.ndarray, counts: np.ndarray
) -> tuple[dict[int, list[tuple[int, int]]], set[int]]:
    """Class → expert flows: the direct arcs' and the block flows split onto the block's
    experts, each class taking at most ``count(c)`` from an expert. Also the classes whose
    cap may bind in a block where no such split exists (solved again with direct arcs)."""
    amounts: dict[int, dict[int, int]] = defaultdict(dict)
    n_pairs, n_blocks = len(graph.pair_class), len(graph.block_class)
    for arc in np.flatnonzero(flows[:n_pairs]).tolist():
        amounts[int(graph.pair_class[arc])][int(graph.pair_expert[arc])] = int(flows[arc])
    incoming: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for arc in (np.flatnonzero(flows[n_pairs : n_pairs + n_blocks])).tolist():
        c = int(graph.block_class[arc])
        incoming[int(graph.block_id[arc])].append((int(counts[c]), c, int(flows[n_pairs + arc])))
    outgoing: dict[int, dict[int, int]] = defaultdict(dict)
    offset = n_pairs + n_blocks
    for arc in np.flatnonzero(flows[offset:]).tolist():
        expert = int(graph.member_expert[arc])
        outgoing[int(graph.member_block[arc])][expert] = int(flows[offset + arc])
    failed: set[int] = set()
    for block, flows_in in sorted(incoming.items()):
        split = _split_block(sorted(flows_in), outgoing[block])
        if split is None:
            most = max(outgoing[block].values(), default=0)
            failed.update(c for cap, c, _ in flows_in if cap < most)
            continue
        for c, expert, amount in split:
            amounts[c][expert] = amount
    runs = {c: sorted(taken.items()) for c, taken in amounts.items()}
    return runs, failed


def _split_block(
    flows_in: list[tuple[int, int, int]], out: dict[int, int]
) -> list[tuple[int, int, int]] | None:
    """``(class, expert, amount)`` taking each ``(cap, class, amount)`` of ``flows_in`` from
    the experts' flows ``out`` at most ``cap`` per expert, or None when impossible. Greedy
    first (the most constrained classes first, each from the experts with the most flow
    left), else a small maximum flow."""
    left = dict(out)
    split = []
    for cap, c, amount in flows_in:
        for expert in sorted(left, key=lambda e: (-left[e], e)):
            if not amount:
                break
            take = min(cap, left[expert], amount)
            if take:
                split.append((c, expert, take))
                left[expert] -= take
                amount -= take
        if amount:
            break
    else:
        return split
    experts = sorted(out)
    n_in, n_out = len(flows_in), len(experts)
    source, sink = n_in + n_out, n_in + n_out + 1
    flow = max_flow.SimpleMaxFlow()
    for i, (cap, _, amount) in enumerate(flows_in):
        flow.add_arc_with_capacity(source, i, amount)
        for k in range(n_out):
            flow.add_arc_with_capacity(i, n_in + k, cap)
    for k, expert in enumerate(experts):
        flow.add_arc_with_capacity(n_in + k, sink, out[expert])
    if flow.solve(source, sink) != flow.OPTIMAL or flow.optimal_flow() < sum(
        amount for _, _, amount in flows_in
    ):
        return None
    split = []
    for arc in range(flow.num_arcs()):
        tail, head = flow.tail(arc), flow.head(arc)
        if tail < n_in and head >= n_in and flow.flow(arc):
            split.append((flows_in[tail][1], experts[head - n_in], flow.flow(arc)))
    return split


def solve(
    reviews: Sequence[ReviewInfo],
    experts: Sequence[ExpertInfo],
    policy: MunicipalityPolicy = MunicipalityPolicy.DIFFERENT,
    seed: int = 0,
    *,
    verify: bool = True,
) -> Plan:
    """The plan for ``reviews``: as many slots filled as possible, then as many previous
    experts kept, then the flattest loads, then other municipalities (see the module
    docstring).

    ``verify`` re-checks every planned pair with :func:`ineligibility_reasons` and every
    capacity, raising ``RuntimeError`` on a violation (a bug, never a user error).
    """
    started = time.perf_counter()
    policy = MunicipalityPolicy(policy)
    network = build_network(reviews, experts, policy, seed)
    ordered, classes, free = network.experts, network.classes, network.free
    n_classes, n_experts = len(classes), len(ordered)
    n_pairs = sum(len(c.eligible) for c in classes)
    counts = np.array([c.count for c in classes], dtype=np.int64)
    supply = np.array([c.supply for c in classes], dtype=np.int64)

    # An expert never takes more than its classes can give it.
    reach = np.zeros(n_experts, dtype=np.int64)
    for cls in classes:
        reach[cls.eligible] += cls.count
    units = np.minimum(free, reach)
    flow_bound = int(min(supply.sum(), units.sum()))
    weight = load_weight(flow_bound)
    open_load = np.array([e.open_load for e in ordered], dtype=np.int64)
    largest_marginal = int((2 * (open_load + units) - 1)[units > 0].max(initial=0))
    # Nodes of a simple cycle: classes, experts, the sink and OR-Tools' own source and sink
    # (a block node only passes flow on at no cost, so it adds no cost to a cycle).
    stranger = stranger_cost(weight, largest_marginal, n_classes + n_experts + 3)
    # Expert → sink, the same in every round: the j-th unit of expert e brings its total
    # load to l + j, at the marginal square 2(l + j) − 1.
    unit_tails = np.repeat(np.arange(n_experts, dtype=np.int32) + n_classes, units)
    starts = np.cumsum(units) - units
    j = np.arange(len(unit_tails), dtype=np.int64) - np.repeat(starts, units) + 1
    unit_costs = weight * (2 * (np.repeat(open_load, units) + j) - 1)
    del starts, j
    build_done = time.perf_counter()
    build_seconds = build_done - started
    solve_seconds = 0.0

    # Solve with blocks; a class whose block flow cannot be split onto distinct experts
    # gets direct arcs and the flow is solved again (see :func:`flow_arcs`).
    direct: set[int] = set()
    runs: dict[int, list[tuple[int, int]]] = {}
    rounds = 0
    arcs = 0
    while True:
        rounds += 1
        t = time.perf_counter()
        graph = flow_arcs(network, units, stranger, direct)
        arcs = graph.arcs
        sink = n_classes + n_experts + graph.blocks  # block nodes come before the sink
        t2 = time.perf_counter()
        build_seconds += t2 - t
        flows = np.zeros(len(graph.tails), dtype=np.int64)
        if len(graph.tails) and flow_bound:
            mcf = min_cost_flow.SimpleMinCostFlow()
            mcf.add_arcs_with_capacity_and_unit_cost(
                graph.tails, graph.heads, graph.caps, graph.costs
            )
            mcf.add_arcs_with_capacity_and_unit_cost(
                unit_tails,
                np.full(len(unit_tails), sink, dtype=np.int32),
                np.ones(len(unit_tails), dtype=np.int64),
                unit_costs,
            )
            supplies = np.zeros(sink + 1, dtype=np.int64)
            supplies[:n_classes] = supply
            supplies[sink] = -supply.sum()
            mcf.set_nodes_supplies(np.arange(sink + 1, dtype=np.int32), supplies)
            status = mcf.solve_max_flow_with_min_cost()
            if status != mcf.OPTIMAL:
                raise RuntimeError(f"assignment flow not solved: {status}")
            flows = mcf.flows(np.arange(len(graph.tails), dtype=np.int32))
            del mcf
        t3 = time.perf_counter()
        solve_seconds += t3 - t2
        runs, failed = _split_blocks(graph, flows, counts)
        build_seconds += time.perf_counter() - t3
        del graph, flows
        if not failed:
            break
        direct |= failed
        if rounds >= MAX_BLOCK_ROUNDS:
            # Enough guessing: every class whose cap can bind gets direct arcs, so the next
            # round is the last (its network at most the size of the direct one).
            direct |= {c for c in range(n_classes) if counts[c] < units.max(initial=0)}

    # Split each class's flow onto its reviews, round-robin (distinct experts: see above).
    assignments: dict[int, tuple[int, ...]] = {}
    new_load = np.zeros(n_experts, dtype=np.int64)
    plan = Plan(assignments={}, loads={}, filled=0, demand=network.demand)
    by_direction: dict[Direction, int] = defaultdict(int)
    receivers: dict[Direction, set[int]] = defaultdict(set)
    for c, expert_runs in sorted(runs.items()):
        cls = classes[c]
        k = cls.count
        chosen: list[list[int]] = [[] for _ in range(k)]
        slot = 0
        for expert, amount in expert_runs:
            for _ in range(amount):
                chosen[slot % k].append(expert)
                slot += 1
            new_load[expert] += amount
            receivers[cls.direction].add(expert)
        by_direction[cls.direction] += slot
        plan.filled += slot
        for review, picked in zip(cls.reviews, chosen, strict=True):
            if picked:
                assignments[review.id] = tuple(ordered[i].id for i in picked)
                for i in picked:
                    plan.previous_kept += ordered[i].id in review.previous_expert_ids
                    plan.same_municipality += ordered[i].municipality_id == review.municipality_id
    plan.assignments = dict(sorted(assignments.items()))
    total = open_load + new_load
    plan.loads = {
        ordered[i].id: int(total[i])
        for i in sorted(range(n_experts), key=lambda i: ordered[i].id)
        if total[i] > 0
    }
    plan.max_load = int(total.max(initial=0))
    plan.max_new_load = int(total[new_load > 0].max(initial=0))
    plan.max_load_by_direction = {
        d: int(max(total[i] for i in ids)) for d, ids in sorted(receivers.items())
    }
    plan.filled_by_direction = dict(sorted(by_direction.items()))
    plan.classes = n_classes
    plan.arcs = n_pairs
    plan.flow_arcs = arcs
    plan.rounds = rounds
    if verify:
        _verify(plan, reviews, ordered, new_load, free, policy)
    plan.build_seconds = build_seconds
    plan.solve_seconds = solve_seconds
    plan.seconds = time.perf_counter() - started
    return plan


def _verify(plan, reviews, ordered, new_load, free, policy) -> None:
    by_id = {e.id: e for e in ordered}
    for review in reviews:
        picked = plan.assignments.get(review.id, ())
        if len(picked) > max(0, review.needed) or len(set(picked)) != len(picked):
            raise RuntimeError(f"review {review.id}: bad expert list {picked}")
        for expert_id in picked:
            reasons = ineligibility_reasons(by_id[expert_id], review, policy)
            if reasons:
                raise RuntimeError(f"review {review.id}, expert {expert_id}: {reasons}")
    if (new_load > free).any():
        raise RuntimeError("capacity exceeded")
