package history

import (
	"testing"
	"time"
)

// Note is on /auth/verify's path: a use of a client already noted allocates nothing.
func BenchmarkRecorderNote(b *testing.B) {
	r := (&Store{}).NewRecorder()
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int64(0)
		for pb.Next() {
			r.Note(i%2000, now, "192.0.2.10", "Mozilla/5.0 (X11; Linux x86_64)", "app.example", "/dash/board?x=1")
			i++
		}
	})
}

func TestNoteAllocatesNothingForAKnownClient(t *testing.T) {
	r := (&Store{}).NewRecorder()
	now := time.Now()
	r.Note(1, now, "192.0.2.10", "ua", "h", "/p")
	if n := testing.AllocsPerRun(1000, func() { r.Note(1, now, "192.0.2.10", "ua", "h", "/p?q") }); n != 0 {
		t.Errorf("Note allocates %.1f times per use of a known client", n)
	}
}
