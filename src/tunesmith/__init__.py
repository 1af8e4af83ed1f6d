"""tunesmith: from a pile of examples to a fine-tuned model in production, with an honest
verdict on whether it beats the model you started with."""

__version__ = "0.1.0"
