"""Use cases: one function per thing a person does, each one store transaction over geo and planner."""
