"""How a shopper and a product become model text, and how text becomes token ids: the one source of
truth imported by serving (rankers' request builders), training (the Celery worker) and the benchmarks.
`text` (item and shopper text, history), `tokenizer` (the packaged all-MiniLM-L6-v2 tokenizer,
configured as transformers' BertTokenizerFast would be). Torch-free."""
