"""The capacity check before a run: per direction, the open demand against the free
capacity of the experts who could take it, with any shortfall named (a leaf module)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from review_portal.assignment.eligibility import ExpertInfo, ReviewInfo
from review_portal.enums import Direction


@dataclass(frozen=True)
class DirectionCapacity:
    direction: Direction
    #: Programs still needing experts, and the expert places they need.
    programs: int
    demand: int
    #: Free places of active experts of the direction (an expert of two directions counts
    #: in both, so the total over directions can exceed what they can really take).
    capacity: int
    experts: int

    @property
    def shortfall(self) -> int:
        return max(0, self.demand - self.capacity)


def capacity_check(reviews: list[ReviewInfo], experts: list[ExpertInfo]) -> list[DirectionCapacity]:
    programs: dict[Direction, int] = defaultdict(int)
    demand: dict[Direction, int] = defaultdict(int)
    for review in reviews:
        if review.needed > 0:
            programs[review.direction] += 1
            demand[review.direction] += review.needed
    capacity: dict[Direction, int] = defaultdict(int)
    counts: dict[Direction, int] = defaultdict(int)
    for expert in experts:
        if not expert.active:
            continue
        for direction in expert.directions:
            capacity[direction] += expert.free_capacity
            counts[direction] += 1
    return [DirectionCapacity(d, programs[d], demand[d], capacity[d], counts[d]) for d in Direction]
