"""Values every test area shares."""

from __future__ import annotations

TEST_API_KEY = "xai-test-key-0123456789"
MODEL = "grok-4.3"
