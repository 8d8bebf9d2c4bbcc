"""Projects: the work after a deal is won, on boards of phases, linked to deals many to
many. Deleting a deal or a project removes the links only."""
