"""The models (layer 3), built from :mod:`attention_course.maths`.

Trained here: :mod:`.seq2seq` (the encoder-decoder and RNNsearch of Chapters 1-2), :mod:`.gpt` (the
small GPT of Chapter 6), :mod:`.date_transformer` (the whole Transformer of Chapter 7). Pretrained,
shipped by pip packages and loaded offline: :mod:`.embeddings` and :mod:`.pretrained`
(all-MiniLM-L6-v2), :mod:`.smollm` (SmolLM2-135M and the course's pieces checked against it).
"""
