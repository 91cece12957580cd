"""Training and measuring (layer 4): the one cached, deterministic training loop (:mod:`.loop`: cache
keys, the atomic cache file, the step loop, :class:`.loop.TrainResult`) and what each model gives it
(:mod:`.seq2seq_training`, :mod:`.gpt_training`, :mod:`.date_training`), quality and cost
(:mod:`.seq2seq_metrics`, :mod:`.attention_cost`), Chapter 8's position experiment
(:mod:`.extrapolation`) and the results measured over seeds that ship with the package
(:mod:`.spread`, with ``training_spread.json`` and ``ch7_choices.json``)."""
