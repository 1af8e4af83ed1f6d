"""Training: conversations turned into tokens with the loss on the model's turns only,
batched with little padding; the trainers of each backend build on these."""
