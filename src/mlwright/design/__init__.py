"""Design stage: ProblemDefinition + constraints -> SolutionPlan."""
