"""The assignment solver against independent references, over random small regions.

The references work on the plain, un-aggregated graph (one node per review, one arc per
pair that :func:`ineligibility_reasons` allows) with OR-Tools' max flow and min-cost flow,
so they share nothing with the solver's classes and their round-robin split.
"""

from __future__ import annotations

import random
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ortools.graph.python import max_flow, min_cost_flow

from review_portal.assignment.eligibility import ExpertInfo, ReviewInfo, ineligibility_reasons
from review_portal.assignment.solver import (
    OWN_MUNICIPALITY_PENALTY,
    build_network,
    flow_arcs,
    load_weight,
    solve,
)
from review_portal.enums import Direction, MunicipalityPolicy

POLICIES = list(MunicipalityPolicy)
PERIODS = [(date(2025, 3, 1), date(2025, 3, 14)), (date(2025, 4, 1), date(2025, 4, 14))]
ABSENCES = [(date(2025, 3, 10), date(2025, 3, 20)), (date(2025, 5, 1), date(2025, 5, 9))]
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def regions(draw, max_experts: int = 7, max_reviews: int = 8):
    """A few municipalities, organizations and directions; experts and reviews over them."""
    municipalities = draw(st.integers(1, 3))
    organizations = draw(st.integers(1, 4))
    pool = draw(st.lists(st.sampled_from(list(Direction)), min_size=1, max_size=3, unique=True))
    inns = [draw(st.sampled_from([None, f"67{org:08d}"])) for org in range(organizations)]
    experts = []
    for expert_id in range(1, draw(st.integers(0, max_experts)) + 1):
        home = draw(st.sampled_from([None, "org", "inn"]))
        org = draw(st.integers(0, organizations - 1))
        capacity = draw(st.integers(0, 4))
        experts.append(
            ExpertInfo(
                id=expert_id,
                directions=frozenset(
                    draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2, unique=True))
                ),
                municipality_id=draw(st.integers(0, municipalities - 1)),
                home_organization_id=org if home == "org" else None,
                home_organization_inn=f"67{org:08d}" if home == "inn" else None,
                capacity=capacity,
                open_load=draw(st.integers(0, capacity + 1)),
                active=draw(st.integers(0, 9)) > 0,
                unavailable=tuple(draw(st.lists(st.sampled_from(ABSENCES), max_size=1))),
            )
        )
    ids = [e.id for e in experts]
    some = st.frozensets(st.sampled_from(ids), max_size=2) if ids else st.just(frozenset())
    reviews = []
    for review_id in range(1, draw(st.integers(0, max_reviews)) + 1):
        org = draw(st.integers(0, organizations - 1))
        assigned = draw(some) if draw(st.integers(0, 5)) == 0 else frozenset()
        reviews.append(
            ReviewInfo(
                id=review_id * 10,
                direction=draw(st.sampled_from(pool)),
                municipality_id=draw(st.integers(0, municipalities - 1)),
                organization_id=org,
                organization_inn=inns[org],
                needed=draw(st.integers(1, 2)) if draw(st.integers(0, 9)) else 0,
                assigned_expert_ids=assigned,
                declined_expert_ids=(draw(some) - assigned)
                if draw(st.integers(0, 4)) == 0
                else frozenset(),
                previous_expert_ids=draw(some) if draw(st.integers(0, 3)) == 0 else frozenset(),
                period=draw(st.sampled_from(PERIODS)),
            )
        )
    return reviews, experts


# --- independent references on the plain graph -----------------------------------------


def plain_pairs(reviews, experts, policy):
    return [
        (r, e)
        for r in reviews
        if r.needed > 0
        for e in experts
        if not ineligibility_reasons(e, r, policy)
    ]


def plain_max_flow(reviews, experts, pairs, expert_caps) -> int:
    """Maximum slots when expert ``i`` may take ``expert_caps[i]`` more."""
    flow = max_flow.SimpleMaxFlow()
    source, sink = 0, 1
    r_node = {r.id: 2 + i for i, r in enumerate(reviews)}
    e_node = {e.id: 2 + len(reviews) + i for i, e in enumerate(experts)}
    for r in reviews:
        flow.add_arc_with_capacity(source, r_node[r.id], max(0, r.needed))
    for r, e in pairs:
        flow.add_arc_with_capacity(r_node[r.id], e_node[e.id], 1)
    for e, cap in zip(experts, expert_caps, strict=True):
        flow.add_arc_with_capacity(e_node[e.id], sink, max(0, cap))
    assert flow.solve(source, sink) == flow.OPTIMAL
    return flow.optimal_flow()


def plain_optimal_max_load(reviews, experts, pairs, filled) -> int:
    """The smallest L with which capacities min(capacity, L) − open load still fill ``filled``."""
    for limit in range(0, max((e.capacity for e in experts), default=0) + 1):
        caps = [min(e.capacity, limit) - e.open_load for e in experts]
        if plain_max_flow(reviews, experts, pairs, caps) == filled:
            return limit
    raise AssertionError("no limit fills the maximum")


def safe_stranger_cost(reviews, experts, weight) -> int:
    """A cost per slot not kept for a previous expert larger than the whole load and
    penalty cost of any plan: keeping one more previous expert always wins (the solver
    uses a smaller, tighter bound; the reference shares nothing with it)."""
    squares = sum((e.open_load + e.free_capacity) ** 2 for e in experts)
    slots = sum(max(0, r.needed) for r in reviews)
    return weight * squares + OWN_MUNICIPALITY_PENALTY * slots + 1


def plain_min_cost(reviews, experts, pairs, policy, *, with_preferences: bool) -> tuple[int, int]:
    """(maximum slots, minimum cost) on the plain graph: squares of loads, optionally
    the solver's lexicographic preferences around them (previous experts kept first, the
    municipality penalty last)."""
    mcf = min_cost_flow.SimpleMinCostFlow()
    r_node = {r.id: i for i, r in enumerate(reviews)}
    e_node = {e.id: len(reviews) + i for i, e in enumerate(experts)}
    sink = len(reviews) + len(experts)
    bound = sum(max(0, r.needed) for r in reviews)
    weight = load_weight(bound) if with_preferences else 1
    stranger = safe_stranger_cost(reviews, experts, weight)
    for r, e in pairs:
        cost = 0
        if with_preferences:
            if e.id not in r.previous_expert_ids:
                cost += stranger
            if (
                policy == MunicipalityPolicy.PREFER_DIFFERENT
                and e.municipality_id == r.municipality_id
            ):
                cost += OWN_MUNICIPALITY_PENALTY
        mcf.add_arc_with_capacity_and_unit_cost(r_node[r.id], e_node[e.id], 1, cost)
    for e in experts:
        for j in range(1, e.free_capacity + 1):
            mcf.add_arc_with_capacity_and_unit_cost(
                e_node[e.id], sink, 1, weight * (2 * (e.open_load + j) - 1)
            )
    for r in reviews:
        mcf.set_node_supply(r_node[r.id], max(0, r.needed))
    mcf.set_node_supply(sink, -bound)
    assert mcf.solve_max_flow_with_min_cost() == mcf.OPTIMAL
    return mcf.maximum_flow(), mcf.optimal_cost()


def plan_costs(plan, reviews, experts, policy) -> tuple[int, int, int]:
    """(slots not given to a previous expert, increase of the square sum of loads,
    municipality penalty) of a plan."""
    by_id = {r.id: r for r in reviews}
    experts_by_id = {e.id: e for e in experts}
    squares = sum(
        load**2 - experts_by_id[e].open_load ** 2
        for e, load in plan.loads.items()
        if load != experts_by_id[e].open_load
    )
    strangers = penalty = 0
    for review_id, expert_ids in plan.assignments.items():
        review = by_id[review_id]
        for expert_id in expert_ids:
            strangers += expert_id not in review.previous_expert_ids
            if policy == MunicipalityPolicy.PREFER_DIFFERENT:
                same = experts_by_id[expert_id].municipality_id == review.municipality_id
                penalty += OWN_MUNICIPALITY_PENALTY * same
    return strangers, squares, penalty


def new_loads(plan) -> dict[int, int]:
    counts: dict[int, int] = {}
    for expert_ids in plan.assignments.values():
        for expert_id in expert_ids:
            counts[expert_id] = counts.get(expert_id, 0) + 1
    return counts


# --- properties ------------------------------------------------------------------------


@pytest.mark.parametrize("policy", POLICIES)
@PROPERTY
@given(region=regions())
def test_plan_is_eligible_maximal_and_optimally_balanced(policy, region):
    reviews, experts = region
    plan = solve(reviews, experts, policy, seed=7)
    by_id = {r.id: r for r in reviews}
    experts_by_id = {e.id: e for e in experts}

    # Every pair is eligible; a review never gets an expert twice nor more than it needs.
    for review_id, expert_ids in plan.assignments.items():
        review = by_id[review_id]
        assert expert_ids
        assert len(set(expert_ids)) == len(expert_ids) <= review.needed
        for expert_id in expert_ids:
            assert ineligibility_reasons(experts_by_id[expert_id], review, policy) == []
    # Capacities hold; loads are the open loads plus the plan.
    added = new_loads(plan)
    for expert in experts:
        load = expert.open_load + added.get(expert.id, 0)
        assert plan.loads.get(expert.id, 0) == load
        if expert.id in added:
            assert load <= expert.capacity
    assert plan.demand == sum(max(0, r.needed) for r in reviews)
    assert plan.filled == sum(added.values())

    # As many slots as a plain maximum flow.
    pairs = plain_pairs(reviews, experts, policy)
    maximum = plain_max_flow(reviews, experts, pairs, [e.free_capacity for e in experts])
    assert plan.filled == maximum

    # Without re-reviews the largest load of an expert given work is the smallest possible,
    # and so is the whole load vector (square sum).
    strangers, squares, penalty = plan_costs(plan, reviews, experts, policy)
    if not any(r.previous_expert_ids for r in reviews):
        if maximum:
            optimum = plain_optimal_max_load(reviews, experts, pairs, maximum)
            assert plan.max_new_load == optimum
            assert max(plan.max_load_by_direction.values()) == optimum
        assert plain_min_cost(reviews, experts, pairs, policy, with_preferences=False) == (
            maximum,
            squares,
        )
    if not maximum:
        assert plan.assignments == {}
    assert plan.previous_kept == plan.filled - strangers

    # Lexicographically optimal: previous experts kept, then loads, then municipalities.
    weight = load_weight(plan.demand)
    stranger = safe_stranger_cost(reviews, experts, weight)
    assert plain_min_cost(reviews, experts, pairs, policy, with_preferences=True) == (
        maximum,
        stranger * strangers + weight * squares + penalty,
    )


@pytest.mark.parametrize("policy", POLICIES)
@PROPERTY
@given(region=regions(), seed=st.integers(0, 2**32), other=st.integers(0, 2**32))
def test_plan_same_seed_same_plan(policy, region, seed, other):
    reviews, experts = region
    plan = solve(reviews, experts, policy, seed=seed)
    shuffled_reviews, shuffled_experts = list(reviews), list(experts)
    random.Random(seed).shuffle(shuffled_reviews)
    random.Random(seed).shuffle(shuffled_experts)
    again = solve(shuffled_reviews, shuffled_experts, policy, seed=seed)
    assert again.assignments == plan.assignments
    assert again.loads == plan.loads
    # Another seed: maybe another plan, but an equally good one.
    different = solve(reviews, experts, policy, seed=other)
    assert different.filled == plan.filled
    assert sorted(different.loads.values()) == sorted(plan.loads.values())
    assert plan_costs(different, reviews, experts, policy) == plan_costs(
        plan, reviews, experts, policy
    )


@pytest.mark.parametrize("policy", POLICIES)
@PROPERTY
@given(region=regions(max_experts=9, max_reviews=12), seed=st.integers(0, 100))
def test_classes_candidates_are_exactly_the_eligible_experts(policy, region, seed):
    reviews, experts = region
    network = build_network(reviews, experts, policy, seed)
    seen = []
    for cls in network.classes:
        candidates = {network.experts[i].id for i in cls.eligible.tolist()}
        for review in cls.reviews:
            seen.append(review.id)
            assert review.direction == cls.direction and review.needed == cls.needed
            assert candidates == {
                e.id for e in experts if not ineligibility_reasons(e, review, policy)
            }
    assert sorted(seen) == sorted(r.id for r in reviews if r.needed > 0)


@PROPERTY
@given(
    count=st.integers(1, 12),
    needed=st.integers(1, 3),
    capacities=st.lists(st.integers(0, 15), min_size=1, max_size=8),
    seed=st.integers(0, 1000),
)
def test_class_split_gives_distinct_experts_and_spreads_fairly(count, needed, capacities, seed):
    """Identical reviews form one class; its flow comes back with distinct experts per
    review, first slots before second ones, older reviews first."""
    experts = [
        ExpertInfo(id=i + 1, directions=frozenset({Direction.ARTS}), municipality_id=1, capacity=c)
        for i, c in enumerate(capacities)
    ]
    reviews = [
        ReviewInfo(
            id=100 + i,
            direction=Direction.ARTS,
            municipality_id=2,
            organization_id=5,
            needed=needed,
        )
        for i in range(count)
    ]
    assert len(build_network(reviews, experts, seed=seed).classes) == 1
    plan = solve(reviews, experts, seed=seed)
    expected = min(count * needed, sum(min(c, count) for c in capacities))
    assert plan.filled == expected
    got = [len(plan.assignments.get(r.id, ())) for r in reviews]
    for expert_ids in plan.assignments.values():
        assert len(set(expert_ids)) == len(expert_ids) <= needed
    assert max(got) - min(got) <= 1
    assert got == sorted(got, reverse=True)


# --- targeted examples -----------------------------------------------------------------


def arts_expert(expert_id, municipality_id=1, **kwargs):
    return ExpertInfo(
        id=expert_id,
        directions=frozenset({Direction.ARTS}),
        municipality_id=municipality_id,
        **kwargs,
    )


def arts_review(review_id, municipality_id=9, **kwargs):
    return ReviewInfo(
        id=review_id,
        direction=Direction.ARTS,
        municipality_id=municipality_id,
        organization_id=50,
        **kwargs,
    )


@pytest.mark.parametrize("seed", range(5))
def test_solve_prefers_previous_experts_when_it_costs_nothing(seed):
    experts = [arts_expert(i) for i in range(1, 7)]
    reviews = [arts_review(10, needed=2, previous_expert_ids=frozenset({4, 6}))] + [
        arts_review(11 + i, needed=1) for i in range(4)
    ]
    plan = solve(reviews, experts, seed=seed)
    assert set(plan.assignments[10]) == {4, 6}
    assert plan.previous_kept == 2
    assert plan.max_new_load == 1


def test_solve_keeps_previous_experts_before_balancing_loads():
    # Issue 18: the previous expert with open work elsewhere is kept for the re-review
    # rather than a newcomer with none.
    experts = [arts_expert(1, open_load=3, capacity=10), arts_expert(2, capacity=10)]
    review = arts_review(10, needed=1, previous_expert_ids=frozenset({1}))
    plan = solve([review], experts)
    assert plan.assignments == {10: (1,)}
    assert plan.loads == {1: 4}
    assert plan.previous_kept == 1


def test_solve_keeps_previous_experts_never_at_the_expense_of_a_slot():
    # Expert 1 is the only one review 11 may have: filling both beats keeping him on 10.
    experts = [arts_expert(1, capacity=1), arts_expert(2)]
    reviews = [
        arts_review(10, needed=1, previous_expert_ids=frozenset({1})),
        arts_review(11, needed=1, declined_expert_ids=frozenset({2})),
    ]
    plan = solve(reviews, experts)
    assert plan.assignments == {10: (2,), 11: (1,)}
    assert plan.previous_kept == 0


def test_solve_keeps_previous_experts_within_their_capacity():
    experts = [arts_expert(1, open_load=2, capacity=2), arts_expert(2)]
    review = arts_review(10, needed=1, previous_expert_ids=frozenset({1}))
    assert solve([review], experts).assignments == {10: (2,)}


def test_solve_skips_previous_experts_who_are_no_longer_eligible():
    experts = [arts_expert(1, active=False), arts_expert(2, municipality_id=9), arts_expert(3)]
    review = arts_review(10, needed=1, previous_expert_ids=frozenset({1, 2}))
    assert solve([review], experts).assignments == {10: (3,)}


def test_solve_fills_the_maximum_before_balancing():
    # Only expert 1, already loaded, can take review 10: filling it beats balance.
    experts = [arts_expert(1, capacity=5, open_load=4), arts_expert(2, capacity=5)]
    reviews = [
        arts_review(10, needed=1, declined_expert_ids=frozenset({2})),
        arts_review(11, needed=1),
    ]
    plan = solve(reviews, experts)
    assert plan.assignments == {10: (1,), 11: (2,)}
    assert plan.filled == plan.demand == 2


@pytest.mark.parametrize("seed", range(5))
def test_solve_prefer_different_avoids_own_municipality_when_possible(seed):
    experts = [arts_expert(1, municipality_id=9), arts_expert(2, municipality_id=3)]
    plan = solve([arts_review(10, needed=1)], experts, MunicipalityPolicy.PREFER_DIFFERENT, seed)
    assert plan.assignments == {10: (2,)}
    assert plan.same_municipality == 0


def test_solve_prefer_different_uses_own_municipality_rather_than_leave_a_slot_empty():
    experts = [arts_expert(1, municipality_id=9), arts_expert(2, municipality_id=3)]
    review = arts_review(10, needed=2)
    plan = solve([review], experts, MunicipalityPolicy.PREFER_DIFFERENT)
    assert sorted(plan.assignments[10]) == [1, 2]
    assert plan.same_municipality == 1
    assert solve([review], experts, MunicipalityPolicy.DIFFERENT).assignments == {10: (2,)}


def test_solve_prefer_different_never_at_the_expense_of_balance():
    experts = [arts_expert(1, municipality_id=9), arts_expert(2, municipality_id=3, open_load=2)]
    plan = solve([arts_review(10, needed=1)], experts, MunicipalityPolicy.PREFER_DIFFERENT)
    assert plan.assignments == {10: (1,)}


def test_solve_empty_inputs():
    plan = solve([], [arts_expert(1, open_load=2)])
    assert (plan.assignments, plan.loads, plan.filled, plan.demand) == ({}, {1: 2}, 0, 0)
    plan = solve([arts_review(10, needed=2)], [])
    assert (plan.assignments, plan.filled, plan.demand) == ({}, 0, 2)


def test_solve_previous_expert_of_the_own_municipality_beats_a_stranger_from_elsewhere():
    experts = [arts_expert(1, municipality_id=9, open_load=1), arts_expert(2, municipality_id=3)]
    review = arts_review(10, needed=1, previous_expert_ids=frozenset({1}))
    plan = solve([review], experts, MunicipalityPolicy.PREFER_DIFFERENT)
    assert plan.assignments == {10: (1,)}
    assert plan.same_municipality == 1


def test_solve_a_block_flow_that_cannot_be_split_is_solved_again_with_direct_arcs():
    # Arts review 10 reaches experts 1 and 2 as one block, arts review 11 only expert 2
    # (1 is of its municipality), technical review 12 experts 1 and 3 as another block.
    # With the blocks, 10 could take expert 1 twice: four slots, which no plan fills. The
    # second round gives the classes of the arts block direct arcs and fills three.
    both = frozenset({Direction.ARTS, Direction.TECHNICAL})
    experts = [
        ExpertInfo(id=1, directions=both, municipality_id=3, capacity=2),
        arts_expert(2, municipality_id=4, capacity=1),
        ExpertInfo(
            id=3, directions=frozenset({Direction.TECHNICAL}), municipality_id=5, capacity=1
        ),
    ]
    reviews = [
        arts_review(10, needed=2),
        arts_review(11, municipality_id=3, needed=1),
        ReviewInfo(
            id=12, direction=Direction.TECHNICAL, municipality_id=9, organization_id=50, needed=1
        ),
    ]
    network = build_network(reviews, experts)
    graph = flow_arcs(network, network.free, stranger=1)
    assert (len(graph.block_class), len(graph.pair_class)) == (2, 1)
    plan = solve(reviews, experts)
    assert plan.rounds == 2
    assert plan.filled == 3
    assert all(len(set(ids)) == len(ids) for ids in plan.assignments.values())
