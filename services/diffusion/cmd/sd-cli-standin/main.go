// Command sd-cli-standin is a STAND-IN for stable-diffusion.cpp's sd-cli: same flags, same
// output, same exit codes, noise images, no model. See package internal/standin.
package main

import "github.com/genailab/genailab/services/diffusion/internal/standin/sdcli"

func main() { sdcli.Main() }
