package deploy

import (
	"os"
	"strings"
	"testing"
)

// The README shows each configuration file whole, as it is here: the files are what the
// proxy tests run, so the README cannot drift from what was tested.
func TestREADMEShowsConfigs(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ file, fence string }{
		{"nginx/console.conf", "```nginx\n"},
		{"caddy/Caddyfile", "```caddyfile\n"},
		{"traefik/traefik.yml", "```yaml\n"},
		{"traefik/console.yml", "```yaml\n"},
	} {
		b, err := os.ReadFile(f.file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(readme), f.fence+string(b)+"```\n") {
			t.Errorf("README.md does not show deploy/%s as it is (in a %q block): copy the file into it", f.file, strings.TrimSpace(f.fence))
		}
	}
}
