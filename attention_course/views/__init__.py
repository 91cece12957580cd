"""What a reader sees (layer 5): figures (:mod:`.plotting`), the one explorer widget class
(:mod:`.explorer`; its JavaScript and CSS in ``static/``), one module per explorer, glue, self-checks,
predictions and source listings (:mod:`.display`, questions in ``quizzes/``), and the ONNX export
of the small models for the browser (:mod:`.onnx_export`)."""
