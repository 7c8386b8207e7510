// Package membench measures the memory the stack's services keep as they
// serve: it runs a fixed mix of requests (health, usage, chat, images)
// through the gateway of a real stack and reads each service's resident
// set (VmRSS in /proc/PID/status) after a given number of them. Its
// benchmark (BenchmarkRSSGrowth) compares the RSS after 10,000 requests
// with the RSS after 100 in the same run.
package membench
