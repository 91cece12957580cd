"""nbgrader configuration: solutions/ is the source, notebooks/ the student release.

Generate the student notebooks (CI fails if they are stale):
    nbgrader generate_assignment ch03_general_form --force
The gradebook database lives in .nbgrader/ (ignored by git).
"""
import os

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

HERE = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.root = HERE
c.CourseDirectory.course_id = "attention-mechanisms"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(HERE, ".nbgrader", "gradebook.db")
os.makedirs(os.path.join(HERE, ".nbgrader"), exist_ok=True)

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# Each cell of a submission gets at most this many seconds when autograded.
c.ExecutePreprocessor.timeout = 120
