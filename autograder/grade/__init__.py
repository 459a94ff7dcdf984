"""The batch grader: a class of notebooks graded in isolated worker processes, in parallel.

``session`` grades one notebook (``policy``: the sandbox's limits; ``forkserver`` and ``worker``: the processes
that run student code; ``isolation``: the kernel features that fence them in; ``protocol``: the frames between
them). ``batch`` grades a folder into a ``store``, writes ``feedback`` and the class ``report``; ``merge`` joins
shards.
"""
