"""Continuous training: the loop from "the data moved" to "a better model serves", run by a
policy a person wrote (:mod:`~mlwright.autopilot.policy`). What starts a rollout and what
promotes, rejects or rolls back a challenger are pure functions of the evidence
(:mod:`~mlwright.autopilot.decide`), so the loop and its simulation judge alike, and nothing is
promoted that has not proved itself on live traffic.
"""
