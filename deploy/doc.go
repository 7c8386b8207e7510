// Package deploy holds genailab's deployment files — systemd units (systemd/), Kubernetes
// manifests (k8s/), a Docker Compose file for one host (compose/) and a reference
// Dockerfile — and the tests that keep them honest: every manifest decodes strictly into
// the official Kubernetes API types, every unit parses with known sections, keys and
// values, and every flag, environment variable and configuration key they use is one the
// built service binaries accept (read from their -h output).
package deploy
