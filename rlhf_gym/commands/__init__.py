"""Sub-commands of the ``rlhf-gym`` command line, one module each."""
