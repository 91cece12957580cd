"""``python -m attention_course.grading SUBMISSIONS --out DIR``: the instructors' grading command."""
from attention_course.grading.cli import main

raise SystemExit(main())
