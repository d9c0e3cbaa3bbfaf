"""The only code that talks to a server: connect (host keys checked), run/probe/stage, web auth for curl."""
