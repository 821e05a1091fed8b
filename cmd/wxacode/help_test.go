package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden help texts in testdata/help")

// TestHelpGolden: every help text is the one in testdata/help, byte for
// byte; go test -run TestHelpGolden -update rewrites them after a change
// meant to be made (review the diff).
func TestHelpGolden(t *testing.T) {
	tests := []struct {
		golden string
		args   []string
		code   int
		stderr bool // the text goes to standard error
	}{
		{"usage.txt", nil, exitUsage, true},
		{"usage.txt", []string{"-h"}, exitOK, false},
		{"usage.txt", []string{"help"}, exitOK, false},
		{"get.txt", []string{"get", "-h"}, exitOK, false},
		{"get.txt", []string{"help", "get"}, exitOK, false},
		{"batch.txt", []string{"batch", "-h"}, exitOK, false},
		{"batch.txt", []string{"help", "batch"}, exitOK, false},
		{"fake.txt", []string{"fake", "-h"}, exitOK, false},
		{"fake.txt", []string{"help", "fake"}, exitOK, false},
		{"unknown.txt", []string{"mint"}, exitUsage, true},
	}
	for _, tc := range tests {
		t.Run(strings.Join(append([]string{"wxacode"}, tc.args...), " "), func(t *testing.T) {
			res := runCLI(context.Background(), t, nil, nil, tc.args...)
			got, other := res.stdout, res.stderr
			if tc.stderr {
				got, other = res.stderr, res.stdout
			}
			if res.code != tc.code || other != "" {
				t.Errorf("exit %d, other stream %q; want %d and nothing", res.code, other, tc.code)
			}
			path := filepath.Join("testdata", "help", tc.golden)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -run TestHelpGolden -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("help differs from %s (go test -run TestHelpGolden -update, then review the diff):\n--- got\n%s\n--- want\n%s", path, got, want)
			}
		})
	}
}
