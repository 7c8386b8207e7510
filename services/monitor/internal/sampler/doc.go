// Package sampler runs one sampler per interval and fans its values out to
// every subscriber of that interval.
//
// A sampler starts with its first subscriber (taking a value at once, so the
// subscriber need not wait a whole interval) and stops when its last
// subscriber cancels. Delivery never blocks: each subscription holds only
// the newest undelivered value, so a subscriber that falls behind skips
// values and is told, with its next value, how many it missed. A stalled
// subscriber therefore costs the sampler and the other subscribers nothing.
package sampler
