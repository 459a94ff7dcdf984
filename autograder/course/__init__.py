"""Course tooling: the course's folders (``layout``), releases and the student bundle, nbgrader adapters, the
synthetic class and the demo, the cross-check with nbgrader, and pytest output for one notebook."""
