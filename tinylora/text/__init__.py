"""Real text: pretrain a TinyLM on the shipped Shakespeare, fine-tune it with LoRA on Milton.

`corpus` (the shipped texts, a character tokenizer, batches), `pretrain`, `finetune` (the
commands), `report` (tuned rates, speed-ups, intervals) and `plots`. Built on the library in
`tinylora/` and the lab's statistics; the library never imports this package.
"""
