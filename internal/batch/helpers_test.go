package batch

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-wxacode/wxacode"
	"github.com/go-wxacode/wxacode/wxacodetest"
)

// syncBuffer is a Log that the workers and the progress line may write
// to at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fake starts a fake API and returns it with a client of it.
func fake(t *testing.T, opts ...wxacodetest.ServerOption) (*wxacodetest.Server, *wxacode.Client) {
	t.Helper()
	srv := wxacodetest.NewServer(opts...)
	t.Cleanup(srv.Close)
	ts := wxacode.NewStableTokenSource(srv.AppID(), srv.AppSecret(), wxacode.WithBaseURL(srv.URL))
	return srv, wxacode.NewClient(ts, wxacode.WithBaseURL(srv.URL))
}

// settledRequests returns how many requests srv received, once no more
// arrive for 100 ms (at most 10 s): a request whose caller was cancelled
// may reach the fake after the caller gave up.
func settledRequests(t *testing.T, srv *wxacodetest.Server) int {
	t.Helper()
	n := len(srv.Requests())
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		m := len(srv.Requests())
		if m == n {
			return n
		}
		n = m
	}
	t.Fatal("the fake kept receiving requests for 10 s")
	return n
}

// config is a Config for input into a new directory, minting with client.
func config(t *testing.T, client Minter, input string) Config {
	t.Helper()
	return Config{Input: strings.NewReader(input), InputName: "test input", Dir: filepath.Join(t.TempDir(), "codes"),
		Client: client, Origin: "test"}
}

// runBatch runs cfg and returns its summary and what it logged.
func runBatch(t *testing.T, ctx context.Context, cfg Config) (Summary, string) {
	t.Helper()
	var log syncBuffer
	cfg.Log = &log
	s, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return s, log.String()
}

// images lists the images in dir, sorted.
func images(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if n := e.Name(); strings.HasSuffix(n, ".jpg") || strings.HasSuffix(n, ".png") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// failures reads dir's failures.csv: scene -> [errcode, errmsg].
func failures(t *testing.T, dir string) map[string][2]string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, FailuresFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != "scene,page,filename,errcode,errmsg" {
		t.Fatalf("header = %v", recs)
	}
	out := map[string][2]string{}
	for _, r := range recs[1:] {
		out[r[0]] = [2]string{r[3], r[4]}
	}
	return out
}

// readCode returns what the fake's image at path was made for.
func readCode(t *testing.T, path string) wxacodetest.Code {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := wxacodetest.ReadCode(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}
