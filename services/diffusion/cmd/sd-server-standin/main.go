// Command sd-server-standin is a STAND-IN for stable-diffusion.cpp's sd-server: same flags,
// same start-up output, same HTTP API and job queue, noise images, no model. See package
// internal/standin.
package main

import "github.com/genailab/genailab/services/diffusion/internal/standin/sdserver"

func main() { sdserver.Main() }
