package server

import (
	"context"
	"fmt"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/hosts"
)

// decisionHost is the host a WouldNeedOffload request is about: the named one, or the
// first ready host (the only one when the orchestrator drives one host).
func (s *Service) decisionHost(name string) (*hosts.Host, error) {
	pin, err := s.resolveHost(name)
	if err != nil {
		return nil, err
	}
	all := s.reg.Hosts()
	if pin != "" || s.single {
		if s.single {
			return all[0], nil
		}
		return s.reg.Get(pin)
	}
	for _, h := range all {
		if st, _ := h.State(); st == orchestratorv1.HostState_HOST_STATE_READY {
			return h, nil
		}
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("%w: no host is known yet", hosts.ErrUnknownHost)
	}
	return all[0], nil
}

// ListHosts lists the hosts with their state and telemetry.
func (s *Service) ListHosts(context.Context, *orchestratorv1.ListHostsRequest) (*orchestratorv1.ListHostsResponse, error) {
	return &orchestratorv1.ListHostsResponse{Hosts: s.reg.List(s.jobs.QueuedPins())}, nil
}

// DrainHost stops placing images on a host; its running image finishes.
func (s *Service) DrainHost(_ context.Context, req *orchestratorv1.DrainHostRequest) (*orchestratorv1.DrainHostResponse, error) {
	h, err := s.setDraining(req.GetName(), true)
	if err != nil {
		return nil, errStatus(err)
	}
	return &orchestratorv1.DrainHostResponse{Host: h}, nil
}

// UndrainHost lets a drained host take images again.
func (s *Service) UndrainHost(_ context.Context, req *orchestratorv1.UndrainHostRequest) (*orchestratorv1.UndrainHostResponse, error) {
	h, err := s.setDraining(req.GetName(), false)
	if err != nil {
		return nil, errStatus(err)
	}
	return &orchestratorv1.UndrainHostResponse{Host: h}, nil
}

func (s *Service) setDraining(name string, draining bool) (*orchestratorv1.Host, error) {
	pin, err := s.resolveHost(name)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, fmt.Errorf("%w \"\": name a host", hosts.ErrUnknownHost)
	}
	h, err := s.reg.SetDraining(pin, draining)
	if err != nil {
		return nil, fmt.Errorf("%w %q", hosts.ErrUnknownHost, name)
	}
	msg := ""
	if draining {
		msg = "Host drained: it finishes its running image and takes no new one."
	} else {
		msg = "Host undrained: it takes images again."
	}
	s.log.Info(msg, "host", name)
	return s.reg.View(h, s.jobs.QueuedPins()[h.Name()]), nil
}
