"""Inventory + secrets -> typed host settings -> rendered files (pure; nothing here talks to a server)."""
