"""The exercises' checks and the instructors' grader (layer 6, the top).

The checks the exercise notebooks call: :mod:`.checks` (Chapters 1-6), :mod:`.checks_transformer`
(Chapter 7), :mod:`.checks_modern` (Chapter 8). The grader that does not trust the student's kernel:
``python -m attention_course.grading SUBMISSIONS --out DIR`` (see :mod:`.cli`; the gradebook and the
feedback pages it writes: :mod:`.gradebook`; the class report: :mod:`.report`; the Canvas and Moodle
import files: :mod:`.exports`).

Design, in one paragraph: every submission runs in its own *sandboxed worker* process
(:mod:`.sandbox`: scratch directory, rlimits, a Python audit hook and, where the kernel allows it,
the wall of :mod:`.wall`: Linux namespaces, made by bubblewrap, in which only the system, Python and
this package are visible, read-only, and ``/tmp`` and the scratch folder are private; the course,
the other submissions and the output are not there, also for code doing its file I/O in C).
Checkers and workers are forked from one warm process that imported torch and the course once.
The worker only executes the student's cells and answers remote calls. The graded test cells of the
nbgrader *source* notebook (public and hidden tests) run in a separate, clean *checker* process
(:mod:`.checker`) in which every function the student defines is a proxy: calling it ships the
arguments to the worker, runs the student's code there and ships back plain data (numbers, strings,
NumPy arrays). Whatever a submission patches in its own interpreter (``numpy.allclose``, IPython
input transformers, ``AssertionError``...) never reaches the process that decides the points.
The pipes between the two processes are :mod:`.wire`; both time calls with :class:`.timer.Alarm`.
"""
