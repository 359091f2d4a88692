package main

import (
	"os/exec"
	"strings"
	"testing"
)

// `make run ARGS="..."` hands the flags to console serve (checked with make -n: nothing is
// built or started).
func TestMakeRunPassesArgs(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("make", "-n", "-C", "../..", "run", `ARGS=--listen 127.0.0.1:9090 --cluster-url https://crdb.example:8080`).CombinedOutput()
	if err != nil {
		t.Fatalf("make -n run: %v\n%s", err, out)
	}
	if want := "./bin/console serve --listen 127.0.0.1:9090 --cluster-url https://crdb.example:8080\n"; !strings.Contains(string(out), want) {
		t.Errorf("make run does not run %q:\n%s", want, out)
	}
}
