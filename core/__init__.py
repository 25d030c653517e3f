"""The torch-free core that services and workers share: domain types, settings, the event-log stores,
the Feast and Triton clients, the model repository, task names and triggers. Nothing here imports
torch, a service or a worker."""
