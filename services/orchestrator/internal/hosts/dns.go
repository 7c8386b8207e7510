package hosts

import (
	"context"
	"sort"
	"time"
)

// followDNS looks the agents' name up every DNSInterval: each address is a host (named by
// its address); new addresses are added, and addresses gone from the answer are removed
// once they run nothing.
func (r *Registry) followDNS(ctx context.Context) {
	for {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		addrs, err := r.o.Resolver.LookupHost(lctx, r.o.DNSName)
		cancel()
		if err != nil {
			r.o.Log.Warn("host discovery by DNS failed", "name", r.o.DNSName, "error", err)
		} else {
			r.syncDNS(addrs)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.o.DNSInterval):
		}
	}
}

func (r *Registry) syncDNS(addrs []string) {
	sort.Strings(addrs)
	want := map[string]bool{}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range addrs {
		want[a] = true
		if _, ok := r.hosts[a]; ok {
			continue
		}
		if err := r.add(r.o.DNSPorts.SpecFor(a)); err != nil {
			r.o.Log.Warn("add host found by DNS", "host", a, "error", err)
			continue
		}
		r.o.Log.Info("host found by DNS", "host", a)
	}
	keep := r.order[:0]
	for _, h := range r.order {
		idle := h.busy == 0
		if want[h.Spec.Name] || !isDNSHost(h) || !idle {
			keep = append(keep, h)
			continue
		}
		r.o.Log.Info("host gone from DNS; removed", "host", h.Spec.Name)
		if h.cancel != nil {
			h.cancel()
		}
		h.Close()
		delete(r.hosts, h.Spec.Name)
	}
	r.order = keep
	r.broadcastLocked()
}

// isDNSHost tells hosts found by DNS from configured ones.
func isDNSHost(h *Host) bool { return h.Spec.Discovered }
