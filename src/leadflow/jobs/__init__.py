"""Jobs: work too long for a request, enqueued in the request's transaction and run by the
worker in chunks, each chunk committed with its progress (see `runner`)."""
