"""Assignment of experts to reviews: eligibility, automatic min-cost-flow routing, deadlines."""
