package server

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
	"github.com/genailab/genailab/services/orchestrator/internal/events"
	"github.com/genailab/genailab/services/orchestrator/internal/jobs"
	"github.com/genailab/genailab/services/orchestrator/internal/state"
)

// Regression (issue 14 item 6): a damaged state.db is replaced at start, and the
// orchestrator says so loudly: an event in the timeline and a health detail on GetHealth,
// besides the log line.
func TestDamagedStateDBIsAnnouncedInEventsAndHealth(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, []byte("not a bbolt file, or what is left of one"), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := state.Open(path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	log := slog.New(slog.DiscardHandler)
	ev := events.New(db, log)
	announceRecovery(db, ev, "")
	evs, err := db.LastEvents(10)
	if err != nil || len(evs) != 1 || !strings.Contains(evs[0].Message, "STATE DATABASE DAMAGED") ||
		!strings.Contains(evs[0].Message, db.Recovered().MovedTo) || evs[0].Values["state_recovered"] != 1 {
		t.Fatalf("events %v (%v)", evs, err)
	}

	s := &Service{db: db, ev: ev, log: log, jobs: jobs.New(db, ev, nil, jobs.Options{ImageDir: t.TempDir()}, log)}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	orchestratorv1.RegisterOrchestratorServiceServer(gs, s)
	go gs.Serve(lis)
	defer gs.Stop()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	var md metadata.MD
	resp, err := orchestratorv1.NewOrchestratorServiceClient(cc).GetHealth(context.Background(), &orchestratorv1.GetHealthRequest{}, grpc.Header(&md))
	if err != nil || resp.GetStatus() != "ok" {
		t.Fatalf("GetHealth: %v %v", resp, err)
	}
	detail := md.Get(HealthDetailHeader)
	if len(detail) != 1 || !strings.Contains(detail[0], "moved to "+db.Recovered().MovedTo) {
		t.Fatalf("health detail %q", detail)
	}
}
