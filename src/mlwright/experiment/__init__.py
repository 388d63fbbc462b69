"""Experiments between model versions (A/B splits, shadows, canaries), as far as they need no
server: the configuration (:mod:`~mlwright.experiment.config`), the assignment of traffic
(:mod:`~mlwright.experiment.assignment`), the always-valid statistics
(:mod:`~mlwright.experiment.stats`), the analysis from the serving store
(:mod:`~mlwright.experiment.analysis`), guardrails (:mod:`~mlwright.experiment.guardrails`)
and the state the store keeps (:mod:`~mlwright.experiment.state`). What picks a variant's slot
for each request runs in the server (:mod:`mlwright.serve.experiment_runtime`).
"""
