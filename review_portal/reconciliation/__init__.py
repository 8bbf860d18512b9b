"""Reconciliation and decision: divergence, third expert, discussion, coordinator resolution,
final scores and the coordinator's decision."""
