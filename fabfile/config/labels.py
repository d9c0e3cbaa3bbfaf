"""Names the rendered configs give the bot's series and alerts; rules, verify and the drill rely on them."""

from __future__ import annotations

BOT_JOB = "rosey-bot"  # scrape job of the bot; the alert rules, verify and the drill name it too
CLUSTER_LABEL = "rosey-bot"  # external label `cluster`, the inhibit rule's and routing's grouping key
