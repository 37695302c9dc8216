#!/bin/bash
# Start hook of the bubble image (run by the base image's start.sh, as jovyan, before the server): give
# the work volume the welcome notebooks it was never given (infracalc.bubble.welcome; never overwrites).
python -m infracalc.bubble.welcome "/home/${NB_USER:-jovyan}/work" || echo "infracalc: the welcome notebooks could not be copied" >&2
