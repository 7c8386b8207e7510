package telemetry

import "testing"

func TestRecommendedThreads(t *testing.T) {
	cases := []struct {
		name                      string
		physical, logical, usable int
		want                      int
	}{
		{"2-core CI box uses both", 2, 2, 2, 2},
		{"4 cores with SMT uses all physical", 4, 8, 8, 4},
		{"8 cores with SMT leaves one", 8, 16, 16, 7},
		{"64-core server leaves one", 64, 128, 128, 63},
		{"affinity caps", 16, 32, 6, 5},
		{"affinity to one core", 8, 16, 1, 1},
		{"unknown physical falls back to logical", 0, 4, 4, 4},
		{"nothing known", 0, 0, 0, 1},
	}
	for _, c := range cases {
		if got := RecommendedThreads(c.physical, c.logical, c.usable); got != c.want {
			t.Errorf("%s: RecommendedThreads(%d, %d, %d) = %d, want %d",
				c.name, c.physical, c.logical, c.usable, got, c.want)
		}
	}
}
