"""The ``opscore`` command line: the parser in ``main`` and one module per command group.

A shell: it may import anything in opscore; nothing in opscore imports it.
"""
