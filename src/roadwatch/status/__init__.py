"""`roadwatch status`: how the whole system is going, from its processes and the broker."""
