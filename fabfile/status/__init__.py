"""`inv status`: the bot's health and the alerting state of each host at a glance."""
