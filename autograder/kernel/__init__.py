"""Inside a notebook kernel: the student's self-check (``check``) and nbgrader's hidden tests (``score``), both
running the graded function in the kernel's own process (``inprocess``)."""
