"""Use cases: one function per thing a person does, over geo and planner (no web, no CLI)."""
