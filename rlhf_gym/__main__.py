"""``python -m rlhf_gym``: the ``rlhf-gym`` command, for launchers that start a module
(``torchrun -m rlhf_gym run ...``, ``accelerate launch -m rlhf_gym run ...``)."""

import sys

from rlhf_gym.cli import main

sys.exit(main())
