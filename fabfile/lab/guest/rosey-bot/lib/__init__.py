"""Stand-in for the Rosey bot: serves the health endpoint contract of shared/bot-endpoint.md, nothing else.

Tests steer it while it runs through a state file it re-reads on every request:
`/opt/rosey-bot/state.json` (path from the config's `state_file`), a JSON object with any of
  connected (bool), users (int), error_rate (errors/s added to bot_errors_total),
  request_rate (requests/s added to bot_requests_total), channel (str).
Write it atomically (`rosey-bot-state connected=false users=3` does). Counters advance with the rates in force
over time, so they only ever grow while the process lives; everything restarts at 0 with the process.
Stdlib only, like the real bot's runtime on the server.
"""
