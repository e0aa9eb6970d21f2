"""Who may do what: the actor behind every state change, roles, and the credentials the shells check.

A foundation beside config, exceptions and store: imports only those, never a capability.
"""
