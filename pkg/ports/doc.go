// Package ports picks free TCP ports for engines and checks that a requested
// port is free before an engine is started on it.
//
// The check matters because some engines (stable-diffusion.cpp's sd-server)
// set SO_REUSEPORT and start happily on a port another server already holds,
// splitting its connections; others (llama-server) fail only after a while.
// Both ends are TCP on the given host, loopback by default.
package ports
