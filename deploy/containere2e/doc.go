// Package containere2e runs the lab as containers: the images `make images` builds
// (deploy/Dockerfile, names in deploy/images.env), started by Docker Compose from
// deploy/compose/compose.yaml with a second agent host added, on a private Docker network.
// The test drives it through the REST gateway only, as a lab's users would, and checks
// what the images promise: a read-only root filesystem, no process running as root, a
// working HEALTHCHECK, the orchestrator's state on its named volume.
//
// It needs a Docker engine (DOCKER_HOST; scripts/dockerd.sh starts a private one), Docker
// Compose (docker compose or Debian's docker-compose), the images, the real
// stable-diffusion.cpp in the agent image and its tiny model (pkg/testenv), and root (the
// bind-mounted model stores and token files are given to the images' uid 65532).
// Elsewhere it skips; GENAILAB_REQUIRE_DOCKER=1 (set in CI) makes that a failure.
package containere2e
