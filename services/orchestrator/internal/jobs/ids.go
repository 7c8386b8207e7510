package jobs

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"sync"
	"time"
)

// Job ids are "j" + 16 hex digits of the creation time in nanoseconds (strictly increasing
// within a process) + 8 random hex digits: they sort by submission, and never contain
// anything but [a-z0-9], so they can name files.
var idPattern = regexp.MustCompile(`^j[0-9a-f]{24}$`)

type idSource struct {
	mu   sync.Mutex
	last int64
}

func (s *idSource) next() string {
	s.mu.Lock()
	n := time.Now().UnixNano()
	if n <= s.last {
		n = s.last + 1
	}
	s.last = n
	s.mu.Unlock()
	var r [4]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("j%016x%s", n, hex.EncodeToString(r[:]))
}

// ValidID reports whether id has the shape of a job id.
func ValidID(id string) bool { return idPattern.MatchString(id) }
