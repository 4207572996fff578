"""Builds roadwatch's parts from the settings: the one place where they are wired together,
a module for each kind of process, so that a process loads only what it runs."""
