"""``python -m attention_course.grading``: the instructors' grading command, and the autograders'.

``python -m attention_course.grading SUBMISSIONS --out DIR`` grades a class (:mod:`.cli`); a first
word of :data:`.autograders.COMMANDS` (``gradescope``, ``prairielearn``, ``run``, ``selfcheck``) that is
not an existing file or folder runs an autograder command (:mod:`.autograders`).
"""
import sys
from pathlib import Path

from attention_course.grading.autograders import COMMANDS
from attention_course.grading.autograders import main as autograders_main
from attention_course.grading.cli import main as grade_main


def main(argv=None) -> int:
    """Dispatch to :func:`.autograders.main` or :func:`.cli.main`; return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in COMMANDS and not Path(argv[0]).exists():
        return autograders_main(argv)
    return grade_main(argv)


if __name__ == "__main__":  # importing this module (e.g. walking the package) runs nothing
    raise SystemExit(main())
