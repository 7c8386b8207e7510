// Package sampler runs one sampler per interval and fans its values out to
// every subscriber of that interval.
//
// A sampler starts with its first subscriber (taking a value at once, so the
// subscriber need not wait a whole interval) and stops when its last
// subscriber cancels. Delivery never blocks: each subscription holds only
// the newest undelivered value, so a subscriber that falls behind skips
// values and is told, with its next value, how many it missed. A stalled
// subscriber therefore costs the sampler and the other subscribers nothing.
//
// A subscription may instead be sent its values (SubscribeSend): the
// sampler's pass calls every such subscription's send function in turn
// from one goroutine, which lets sends to one gRPC connection share its
// writes. A send that stalls for StallAfter moves its subscription off the
// pass to be served like the others, so a stalled receiver costs the rest
// at most StallAfter, once.
package sampler
