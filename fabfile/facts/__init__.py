"""What the server says, read and parsed: one module per kind of fact (units, firewall, files, releases).

Each module holds the snippets that ask and the pure parsers of their answers, so the deploy steps, verify
and status read the server the same way; nothing here talks to a server (fabfile/ssh runs the snippets).
"""
