"""Names the rendered configs give the bot's series and alerts; rules, verify and the drill rely on them."""

from __future__ import annotations

BOT_JOB = "rosey-bot"  # scrape job of the bot; the alert rules, verify and the drill name it too
CLUSTER_LABEL = "rosey-bot"  # external label `cluster`, the inhibit rule's and routing's grouping key
HEARTBEAT_ALERT = "Watchdog"  # always-firing rule; routed only to the heartbeat receiver, never mailed
PEER_PROMETHEUS_JOB = "peer-prometheus"  # scrape jobs of a cluster peer; only MonitoringPeerDown reads them
PEER_ALERTMANAGER_JOB = "peer-alertmanager"
