package testenv

import (
	"errors"
	"testing"
	"time"
)

func TestFindEtcdHonoursTheVariable(t *testing.T) {
	t.Setenv(EtcdEnv, t.TempDir()+"/no-etcd")
	if _, err := FindEtcd(); err == nil || errors.Is(err, ErrMissing) {
		t.Fatalf("a configured etcd that is not there must be an error, not a skip: %v", err)
	}
}

// A three-member cluster starts healthy, keeps its quorum without one member, and takes
// that member back after a SIGKILL.
func TestEtcdClusterOfThreeSurvivesOneMember(t *testing.T) {
	c := StartEtcd(t, 3)
	if len(c.Endpoints()) != 3 {
		t.Fatalf("endpoints %v", c.Endpoints())
	}
	c.Members[0].Kill()
	if err := c.Members[1].WaitHealthy(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Members[0].Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.Members[0].WaitHealthy(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}
