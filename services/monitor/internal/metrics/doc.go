// Package metrics exposes the monitor's telemetry in Prometheus text format
// on /metrics, from a private registry.
//
// GPU series use the names and units of NVIDIA's dcgm-exporter (for
// example DCGM_FI_DEV_FB_USED in MiB, DCGM_FI_DEV_POWER_USAGE in W) with its
// gpu, UUID, device, modelName and Hostname labels, so existing DCGM
// dashboards work unchanged. Host, managed-process, VRAM-attribution and
// WatchUsage series are genailab_* gauges and counters.
//
// Values come from the newest snapshot the monitor already took (it samples
// once a second for its history), so a scrape costs no extra reading.
package metrics
