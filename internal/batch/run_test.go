package batch

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-wxacode/wxacode"
	"github.com/go-wxacode/wxacode/wxacodetest"
)

// TestRunMintsAndResumes: a run mints every row, a second finds them all
// present and calls nothing.
func TestRunMintsAndResumes(t *testing.T) {
	srv, client := fake(t)
	cfg := config(t, client, "scene,filename\na=1,\nb=2,poster\na=1,\n")
	s, _ := runBatch(t, context.Background(), cfg)
	if s.Rows != 3 || s.Minted != 2 || s.Duplicates != 1 || s.Failed != 0 || s.Left != 0 || len(srv.Requests()) != 2 {
		t.Fatalf("first run: %+v, %d calls", s, len(srv.Requests()))
	}
	if got, want := images(t, cfg.Dir), []string{"a%3D1.jpg", "poster.jpg"}; !slices.Equal(got, want) {
		t.Errorf("images %v, want %v", got, want)
	}
	if c := readCode(t, cfg.Dir+"/poster.jpg"); c.Scene != "b=2" {
		t.Errorf("poster.jpg holds %+v", c)
	}
	cfg.Input = strings.NewReader("scene,filename\na=1,\nb=2,poster\n")
	s, _ = runBatch(t, context.Background(), cfg)
	if s.Present != 2 || s.Minted != 0 || len(srv.Requests()) != 2 {
		t.Errorf("second run: %+v, %d calls; want both present, no call", s, len(srv.Requests()))
	}
}

// TestRunErrorsBeforeAnyCall: what stops a batch before it starts is an
// error from Run, and nothing is sent.
func TestRunErrorsBeforeAnyCall(t *testing.T) {
	srv, client := fake(t)
	cfg := config(t, client, "")
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "no scenes") {
		t.Errorf("empty input: %v", err)
	}
	cfg = config(t, client, "scene,page\na=1\n")
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "wrong number of fields") {
		t.Errorf("bad CSV: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg = config(t, client, "a=1\n")
	if _, err := Run(ctx, cfg); err == nil {
		t.Error("a cancelled context while reading: no error")
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d calls", n)
	}
}

// TestRunQuota: quota errors pause every worker and the scene is tried
// again; pauses that run out end the run with the scenes left, which are
// not failures.
func TestRunQuota(t *testing.T) {
	t.Run("outlasted", func(t *testing.T) {
		srv, client := fake(t)
		cfg := config(t, client, "a=1\nb=2\n")
		cfg.QuotaPause, cfg.QuotaGiveUp = time.Millisecond, 300*time.Millisecond
		srv.FailNext(12, 45011)
		s, _ := runBatch(t, context.Background(), cfg)
		if s.Minted != 2 || s.Exhausted != 0 || s.Failed != 0 {
			t.Errorf("%+v, want both minted", s)
		}
	})
	t.Run("exhausted", func(t *testing.T) {
		srv, client := fake(t)
		cfg := config(t, client, "a=1\nb=2\nc=3\nbad scene\n")
		cfg.QuotaPause, cfg.QuotaGiveUp = time.Millisecond, 300*time.Millisecond
		srv.FailNext(1_000_000, 45009)
		s, _ := runBatch(t, context.Background(), cfg)
		if s.Exhausted != 45009 || s.Left != 3 || s.Failed != 1 {
			t.Errorf("%+v, want exhausted with 3 left and the bad scene failed", s)
		}
		if f := failures(t, cfg.Dir); len(f) != 1 || f["bad scene"] == ([2]string{}) {
			t.Errorf("failures = %v, want only the invalid scene", f)
		}
	})
}

// TestRunPauseOnATerminal: on a terminal a pause shows in the live line,
// not as a log line.
func TestRunPauseOnATerminal(t *testing.T) {
	srv, client := fake(t)
	srv.FailNext(1, 45011)
	cfg := config(t, client, "a=1\n")
	cfg.Terminal = true
	cfg.QuotaPause = 1200 * time.Millisecond // longer than the live line's 500 ms
	s, log := runBatch(t, context.Background(), cfg)
	if s.Minted != 1 || !strings.Contains(log, "\r0/1 done, 0 errors, paused for quota (45011): resuming in 1s") {
		t.Errorf("%+v, log %q; want the live line to say it pauses", s, log)
	}
	if strings.Contains(log, "wxacode batch: paused") {
		t.Errorf("log %q: a log line on a terminal", log)
	}
}

// TestRunBusyTokenEndpointPauses: a token endpoint answering -1 (busy)
// would fail every scene alike; the run pauses for it as for the quota,
// says so, and mints every scene once it answers.
func TestRunBusyTokenEndpointPauses(t *testing.T) {
	srv := wxacodetest.NewServer()
	t.Cleanup(srv.Close)
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var busy atomic.Int64
	busy.Store(8)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/cgi-bin/") && busy.Add(-1) >= 0 {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"errcode":-1,"errmsg":"system error"}`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	ts := wxacode.NewStableTokenSource(srv.AppID(), srv.AppSecret(), wxacode.WithBaseURL(front.URL))
	cfg := config(t, wxacode.NewClient(ts, wxacode.WithBaseURL(front.URL)), "a=1\nb=2\nc=3\n")
	cfg.QuotaPause = time.Millisecond
	s, log := runBatch(t, context.Background(), cfg)
	if s.Minted != 3 || s.Failed != 0 {
		t.Fatalf("%+v, log %q; want all 3 minted after the pause", s, log)
	}
	if !strings.Contains(log, "paused for a busy token endpoint (-1)") {
		t.Errorf("log %q does not show the pause", log)
	}
}

// TestRunCaseInsensitiveDirectory: on a directory that ignores case, two
// names that differ only in case are a failure, never an overwrite.
func TestRunCaseInsensitiveDirectory(t *testing.T) {
	for _, folds := range []bool{true, false} {
		t.Run(fmt.Sprintf("folds=%v", folds), func(t *testing.T) {
			_, client := fake(t)
			cfg := config(t, client, "scene,filename\na=1,Poster\nb=2,poster\n")
			cfg.FoldsCase = func(string) bool { return folds }
			s, _ := runBatch(t, context.Background(), cfg)
			if folds {
				if s.Failed != 1 || len(images(t, cfg.Dir)) != 1 {
					t.Fatalf("%+v, images %v; want one failed and one image", s, images(t, cfg.Dir))
				}
				if f := failures(t, cfg.Dir); !strings.Contains(f["b=2"][1], "ignores case") {
					t.Errorf("failures = %v, want b=2 as a case collision", f)
				}
				return
			}
			if s.Failed != 0 || !slices.Equal(images(t, cfg.Dir), []string{"Poster.jpg", "poster.jpg"}) {
				t.Errorf("%+v, images %v; want both", s, images(t, cfg.Dir))
			}
		})
	}
	// The probe itself: Linux file systems used for temporary directories
	// are case-sensitive.
	if runtime.GOOS == "linux" && caseInsensitive(t.TempDir()) {
		t.Error("caseInsensitive = true for a Linux temporary directory")
	}
}

// TestRunProgressInLogs: with a Log that is not a terminal, progress lines
// still come at the set interval.
func TestRunProgressInLogs(t *testing.T) {
	_, client := fake(t, wxacodetest.WithLatency(100*time.Millisecond))
	cfg := config(t, client, "a=1\na=2\na=3\n")
	cfg.ProgressEvery, cfg.Concurrency = 20*time.Millisecond, 1
	s, log := runBatch(t, context.Background(), cfg)
	if s.Minted != 3 {
		t.Fatalf("%+v", s)
	}
	if n := strings.Count(log, "wxacode batch: progress: "); n < 2 || !strings.Contains(log, "/3 done") || strings.Contains(log, "\r") {
		t.Errorf("log = %q, want progress lines (no carriage returns)", log)
	}
}

// TestRunAfterEachAndMemoryLimit: AfterEach sees every settled code once,
// in order, and SetMemoryLimit is asked once, with a limit above what the
// process holds, only when set.
func TestRunAfterEachAndMemoryLimit(t *testing.T) {
	_, client := fake(t)
	cfg := config(t, client, "a=1\nb=2\nbad scene\nc=3\n")
	var seen []int
	cfg.AfterEach = func(n int) { seen = append(seen, n) }
	cfg.Concurrency = 1
	var limits []int64
	cfg.SetMemoryLimit = func(n int64) { limits = append(limits, n) }
	s, _ := runBatch(t, context.Background(), cfg)
	if s.Minted != 3 || s.Failed != 1 || !slices.Equal(seen, []int{1, 2, 3}) {
		t.Errorf("%+v, AfterEach saw %v; want 1, 2, 3 (the bad scene fails unsent)", s, seen)
	}
	if len(limits) != 1 || limits[0] < 16<<20 {
		t.Errorf("memory limits %v, want one above 16 MiB", limits)
	}
}

// TestRunInterrupted: a run whose ctx ends midway leaves no half image and
// counts what is left; the next run finishes exactly those.
func TestRunInterrupted(t *testing.T) {
	srv, client := fake(t)
	var in strings.Builder
	for i := range 60 {
		fmt.Fprintf(&in, "id=%d\n", i)
	}
	cfg := config(t, client, in.String())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.AfterEach = func(n int) {
		if n == 20 {
			cancel()
		}
	}
	s, _ := runBatch(t, ctx, cfg)
	if s.Left == 0 || s.Minted+s.Left != 60 || s.Failed != 0 {
		t.Fatalf("interrupted: %+v; want some left, none failed", s)
	}
	calls := settledRequests(t, srv)
	cfg.AfterEach = nil
	cfg.Input = strings.NewReader(in.String())
	s2, _ := runBatch(t, context.Background(), cfg)
	if s2.Present != s.Minted || s2.Minted != s.Left || len(srv.Requests())-calls != s.Left {
		t.Errorf("resumed: %+v after %+v; want the rest minted, %d calls", s2, s, s.Left)
	}
}
