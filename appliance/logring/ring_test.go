package logring

import (
	"fmt"
	"strings"
	"testing"
)

func texts(r *Ring, after uint64, max int) []string {
	var out []string
	for _, e := range r.Since(after, max) {
		out = append(out, e.Text)
	}
	return out
}

func TestRing(t *testing.T) {
	tests := []struct {
		name   string
		cap    int
		writes []string
		after  uint64
		max    int
		want   []string
	}{
		{"lines", 10, []string{"a\nb\n"}, 0, 100, []string{"a", "b"}},
		{"partial joined", 10, []string{"he", "llo\nwor", "ld\n"}, 0, 100, []string{"hello", "world"}},
		{"partial waits", 10, []string{"a\nb"}, 0, 100, []string{"a"}},
		{"wraps", 3, []string{"1\n2\n3\n4\n5\n"}, 0, 100, []string{"3", "4", "5"}},
		{"after", 10, []string{"1\n2\n3\n"}, 2, 100, []string{"3"}},
		{"max keeps newest", 10, []string{"1\n2\n3\n4\n"}, 0, 2, []string{"3", "4"}},
		{"crlf", 10, []string{"x\r\n"}, 0, 100, []string{"x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(tt.cap)
			for _, w := range tt.writes {
				fmt.Fprint(r, w)
			}
			got := texts(r, tt.after, tt.max)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRingSequence(t *testing.T) {
	r := New(2)
	fmt.Fprint(r, "a\nb\nc\n")
	es := r.Since(0, 10)
	if len(es) != 2 || es[0].Seq != 2 || es[1].Seq != 3 || r.Last() != 3 {
		t.Fatalf("sequence numbers wrong: %+v last=%d", es, r.Last())
	}
}

func TestRingLongLine(t *testing.T) {
	r := New(4)
	fmt.Fprint(r, strings.Repeat("x", 3*maxLine))
	if es := r.Since(0, 10); len(es) == 0 || len(es[0].Text) > maxLine+20 {
		t.Fatalf("long unterminated line not bounded: %d entries", len(es))
	}
}
