package sessionstore

import (
	"bytes"
	"testing"
)

func BenchmarkCookieValue(b *testing.B) {
	c := Cookie{ID: 784445853689282561, Secret: bytes.Repeat([]byte{7}, SecretLength)}
	b.ReportAllocs()
	for b.Loop() {
		_ = c.Value()
	}
}

func BenchmarkDecodeCookie(b *testing.B) {
	s := Cookie{ID: 784445853689282561, Secret: bytes.Repeat([]byte{7}, SecretLength)}.SetCookie()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeCookie(s); err != nil {
			b.Fatal(err)
		}
	}
}
