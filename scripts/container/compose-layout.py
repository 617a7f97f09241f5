#!/usr/bin/python3
"""Reads docker-compose.yml as podman-compose 1.0.3 does and prints the parts
scripts/container-check.sh starts by hand, one per line:
    replica-env KEY=VALUE      (replica-a's environment, interpolated; a
                               value that is the admin key prints as KEY
                               alone: podman run -e KEY takes it from the
                               environment, not the command line)
    gateway-arg ARG            (the gateway's command)
Fails if a variable stayed literal after podman-compose's own interpolation
(it passed `${VAR:-}` through as text), or if the replicas differ.
Run with Debian's /usr/bin/python3 (podman_compose and yaml are its modules).
"""
import os
import sys

import podman_compose
import yaml

# usage: CHATD_ADMIN_KEY=... compose-layout.py FILE
# The environment is the interpolation's, as for podman-compose; .env is not
# read (the check runs with its own admin key and the offline provider).
path = sys.argv[1]
admin_key = os.environ["CHATD_ADMIN_KEY"]
with open(path) as f:
    compose = yaml.safe_load(f)
compose = podman_compose.rec_subs(compose, dict(os.environ))
text = yaml.safe_dump(compose)
if "${" in text:
    left = [line.strip() for line in text.splitlines() if "${" in line]
    sys.exit("uninterpolated variables: " + "; ".join(left))
services = compose["services"]
for name in ("postgres", "replica-a", "replica-b", "gateway"):
    if name not in services:
        sys.exit(f"no service {name}")
if services["replica-a"] != services["replica-b"]:
    sys.exit("replica-a and replica-b differ")
env = podman_compose.norm_as_dict(services["replica-a"].get("environment", {}))
for key, value in env.items():
    print(f"replica-env {key}" if value == admin_key else f"replica-env {key}={value}")
for arg in services["gateway"]["command"]:
    print(f"gateway-arg {arg}")
