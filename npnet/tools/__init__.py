"""Tools built on the engine: they run networks for a purpose other than training one.

gradcheck.py   analytic vs numerical gradients, of a config's network or every component
explain.py     the numbers of the tutorial chapters that train nothing
"""
