"""Reports: the figures a sales team asks of its pipeline and its inbox."""
