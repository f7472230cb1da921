"""The fast implementations: the same functions as the reference in `tinylora/`, faster.
"""
