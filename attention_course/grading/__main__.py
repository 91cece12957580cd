"""``python -m attention_course.grading SUBMISSIONS --out DIR``: the instructors' grading command."""
from attention_course.grading.cli import main

if __name__ == "__main__":  # importing this module (e.g. walking the package) runs nothing
    raise SystemExit(main())
