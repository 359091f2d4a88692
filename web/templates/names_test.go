package templates

import "testing"

func TestShowName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice", "alice"},
		{"a b", "a b"},
		{"root ", "root<U+0020>"},
		{" root", "<U+0020>root"},
		{"  ", "<U+0020><U+0020>"},
		{"ad\u202Enimda", "ad<U+202E>nimda"},
		{"\u2066x\u2069", "<U+2066>x<U+2069>"},
		{"a\u200Bb", "a<U+200B>b"}, // zero-width space (Cf)
		{"a\u00A0b", "a<U+00A0>b"}, // no-break space (Zs)
		{"a\u2028b\u2029", "a<U+2028>b<U+2029>"},
		{"a\tb\x00", "a<U+0009>b<U+0000>"},
		{"a\u0085", "a<U+0085>"},    // next line (Cc)
		{"\u3164", "<U+3164>"},      // Hangul filler (default-ignorable)
		{"x\uFE0F", "x<U+FE0F>"},    // variation selector
		{"\uE000", "<U+E000>"},      // private use
		{"\U000E0041", "<U+E0041>"}, // tag character (Cf)
		{"bad\xffbyte", "bad<0xFF>byte"},
		{"Jürgen", "Jürgen"},
		{"日本", "日本"},
		{"<b>&", "<b>&"}, // markup is the escaper's job, not this
	} {
		if got := ShowName(tc.in); got != tc.want {
			t.Errorf("ShowName(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := string(AppendShowName([]byte("x"), tc.in)); got != "x"+tc.want {
			t.Errorf("AppendShowName(%q) = %q", tc.in, got)
		}
	}
	if n := testing.AllocsPerRun(100, func() { ShowName("plain_user.name") }); n != 0 {
		t.Errorf("ShowName of a plain name allocates %v times", n)
	}
}
