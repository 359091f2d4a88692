package main

import (
	"testing"
	"time"
)

// The run's default bound grows with the sizes: the scale run at 10M backfills its history for
// about 25 minutes, which the flat 15 minutes cut short.
func TestDefaultLimit(t *testing.T) {
	for _, tc := range []struct {
		quick bool
		sizes []int
		want  time.Duration
	}{
		{true, []int{10_000}, 3 * time.Minute},
		{false, nil, 15 * time.Minute},
		{false, []int{10_000, 1_000_000}, 15*time.Minute + 4*time.Minute + 2400*time.Millisecond},
		{false, []int{1_000_000, 10_000_000}, 59 * time.Minute},
	} {
		if got := defaultLimit(tc.quick, tc.sizes); got != tc.want {
			t.Errorf("defaultLimit(%v, %v) = %v, want %v", tc.quick, tc.sizes, got, tc.want)
		}
	}
}
