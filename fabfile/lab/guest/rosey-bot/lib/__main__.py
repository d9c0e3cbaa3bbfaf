"""Entry point: `python3 -m lib` with BOT_CONFIG pointing at the JSON config (health_port etc.)."""

from lib.server import main

main()
