#!/bin/sh
# A tiny project seeded into /workspace by `workspace.from`.
cat /etc/motd
ls /workspace
