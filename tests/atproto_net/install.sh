#!/usr/bin/env bash
# Placeholder until the Bluesky connector lands its local network installer.
exit 0
