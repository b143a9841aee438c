"""Use cases: one function per thing a person does, over geo (store) and planner (decisions)."""
