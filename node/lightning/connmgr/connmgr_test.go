package connmgr

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

var errBad = errors.New("bad gossip")

func TestBackoff(t *testing.T) {
	tests := []struct {
		name string
		// results are what successive runs return.
		results []error
		// wantMinGap is the least time between the last two attempts.
		wantMinGap, wantMaxGap time.Duration
	}{
		{"grows", []error{errors.New("refused"), errors.New("refused"), errors.New("refused")}, 20 * time.Millisecond, 2 * time.Second},
		{"misbehaving peer waits the longest", []error{errBad, errBad}, 250 * time.Millisecond, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var times []time.Time
			done := make(chan struct{})
			m := New(Config{
				MinBackoff: 10 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, Stable: time.Hour,
				Misbehaved: func(err error) bool { return errors.Is(err, errBad) },
				Run: func(ctx context.Context, tg Target, up func()) error {
					mu.Lock()
					defer mu.Unlock()
					times = append(times, time.Now())
					if len(times) > len(tt.results) {
						close(done)
						<-ctx.Done()
						return ctx.Err()
					}
					up()
					return tt.results[len(times)-1]
				},
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			m.Add(ctx, Target{ID: "02aa", Addr: "127.0.0.1:1"})
			select {
			case <-done:
			case <-ctx.Done():
				t.Fatal("not retried")
			}
			st := m.Status()
			if len(st) != 1 || st[0].Attempts != len(tt.results)+1 || st[0].LastError == "" {
				t.Fatalf("status %+v", st)
			}
			m.Close()
			gap := times[len(times)-1].Sub(times[len(times)-2])
			if gap < tt.wantMinGap || gap > tt.wantMaxGap {
				t.Fatalf("last gap %v, want between %v and %v", gap, tt.wantMinGap, tt.wantMaxGap)
			}
			if len(m.Status()) != 0 {
				t.Fatal("peer left after Close")
			}
		})
	}
}
