"""clickmuncher: exact click counting for redirect links.

The umbrella package holds what the three services share (settings, record types, logging) and the local
development stack (the Kafka broker launcher, ``clickmuncher up``). The services live in ``gateway``,
``streams`` and ``sinks`` and never import one another.
"""

__version__ = "0.1.0"
