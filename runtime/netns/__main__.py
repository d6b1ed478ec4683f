"""`python -m dtnlab.runtime.netns --lab DIR`: the supervisor of a lab on the netns provider."""

from __future__ import annotations

import sys

from ..providers.netns import supervise

if __name__ == "__main__":
    sys.exit(supervise())
