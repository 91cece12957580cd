"""The course's data (layer 2): :mod:`.dates` (the date task, its training, validation and test
splits; Chapters 1, 2, 7) and :mod:`.fortunes` (the text Chapter 6's GPT learns from)."""
