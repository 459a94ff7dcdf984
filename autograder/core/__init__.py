"""The engine core: what a graded question is and how one answer is judged.

``spec`` (questions as data) -> ``casegen`` (case files from the reference) -> ``pipeline`` (build the inputs, call
the function, judge the outputs) with ``calls``, ``compare``, ``judge``, ``scoring`` and ``verdicts``. ``registry``
lists the assignments; ``extract`` reads a notebook's code. Nothing here starts a process.
"""
