"""The demo workspace built through the real pipeline, its seeded data set, and the traffic simulator.

May import every capability (it drives the whole loop); only the shells import it.
"""
