"""Deployment steps. Each is `step(conn, host, ctx) -> StepResult`: read state, decide, act."""
