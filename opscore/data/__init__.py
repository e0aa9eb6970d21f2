"""Where data comes in: reading tabular files, feature schemas and validation, reference profiles.

Imports only the foundations (config, exceptions, store) and access.
"""
