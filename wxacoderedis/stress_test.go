package wxacoderedis

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-wxacode/wxacode"
	"github.com/go-wxacode/wxacode/wxacodetest"
	"github.com/redis/go-redis/v9"
)

// The stress tests run the fleet as an operator meets it on a busy week:
// 4 replicas with 200 callers each, against a Redis that is slow, full,
// frozen or cut off. The quota is 5000 a minute scaled down to 50 per
// 600 ms (n + burst = 51), so that a run of a few seconds spans several
// periods.
const (
	stressN      = 50
	stressPeriod = 600 * time.Millisecond
	stressBurst  = 1 // max(1, ceil(50/60))
	stressRun    = 4 * time.Second
)

// stressResult is what a "stress" replica reports, as JSON in its Out file.
type stressResult struct {
	Grants   int64          // Waits that returned nil
	Commands int64          // Redis commands its client was asked to send
	Logs     string         // what its Limiter and Cache logged
	Sent     []time.Time    // when each getwxacodeunlimit request was handed to the transport
	ByName   map[string]int // commands sent, by name
}

// runStressReplica is a "stress" child's body: r.Workers callers, each
// minting scenes of its own in a loop from r.Start to r.End.
func runStressReplica(t *testing.T, r replica) {
	rdb := redis.NewClient(&redis.Options{Addr: r.Redis, Password: r.Password})
	defer rdb.Close()
	hook := &countHook{}
	rdb.AddHook(hook)
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	lim := &countingLimiter{Limiter: NewLimiter(rdb, r.AppID, r.N, r.Period, WithLogger(logger))}
	hc := warmHTTPClient(r.API, r.Workers)
	sends := &sendClock{next: hc.Transport}
	hc.Transport = sends
	opts := []wxacode.Option{wxacode.WithBaseURL(r.API), wxacode.WithLimiter(lim), wxacode.WithMaxAttempts(1),
		wxacode.WithHTTPClient(hc)}
	if r.Cache {
		opts = append(opts, wxacode.WithCache(NewCache(rdb, r.AppID, WithLogger(logger))))
	}
	client := wxacode.NewClient(wxacode.StaticToken(r.Token), opts...)
	time.Sleep(time.Until(r.Start))
	ctx, cancel := context.WithDeadline(context.Background(), r.End)
	defer cancel()
	var wg sync.WaitGroup
	for w := range r.Workers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				// Each call has a deadline of its own, as a service's
				// requests do, so turns are not all reserved at the start.
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				_, _ = client.GetUnlimited(cctx, wxacode.Request{Scene: fmt.Sprintf("%s%d-%d", r.Name, w, i)})
				cancel()
			}
		})
	}
	wg.Wait()
	out, _ := json.Marshal(stressResult{Grants: lim.grants.Load(), Commands: hook.n.Load(), Logs: logs.String(), Sent: sends.times(), ByName: hook.names()})
	if err := os.WriteFile(r.Out, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// warmHTTPClient returns an HTTP client holding n open connections to
// api: what the fake counts is when requests arrive, and a caller's first
// request would otherwise arrive late by a TCP connect under load, which
// bunches requests the Limiter spaced (the API's count, not the
// Limiter's, would then be off).
func warmHTTPClient(api string, n int) *http.Client {
	tr := &http.Transport{MaxIdleConns: 2 * n, MaxIdleConnsPerHost: 2 * n}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if resp, err := hc.Get(api + "/warm-up"); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		})
	}
	wg.Wait()
	return hc
}

// sendClock records when each code request leaves the replica: what the
// fleet sends. The fake's arrival times add the scheduling delays of the
// fake's own process, which shares the two loaded cores with the
// replicas: the API itself is not on this machine.
type sendClock struct {
	next http.RoundTripper
	mu   sync.Mutex
	sent []time.Time
}

func (s *sendClock) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, "/getwxacodeunlimit") {
		s.mu.Lock()
		s.sent = append(s.sent, time.Now())
		s.mu.Unlock()
	}
	return s.next.RoundTrip(req)
}

func (s *sendClock) times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// countingLimiter counts the turns a Limiter grants.
type countingLimiter struct {
	wxacode.Limiter
	grants atomic.Int64
}

func (c *countingLimiter) Wait(ctx context.Context) error {
	err := c.Limiter.Wait(ctx)
	if err == nil {
		c.grants.Add(1)
	}
	return err
}

// fleetRun is one stress run: what the API saw and what each replica said.
type fleetRun struct {
	start   time.Time
	reqs    []wxacodetest.Request // in the run's time, by arrival
	results []stressResult
}

// worst is the most requests the fleet sent within one period.
func (f fleetRun) worst() int {
	var sent []wxacodetest.Request
	for _, r := range f.results {
		for _, t := range r.Sent {
			sent = append(sent, wxacodetest.Request{Time: t})
		}
	}
	slices.SortFunc(sent, func(a, b wxacodetest.Request) int { return a.Time.Compare(b.Time) })
	return maxInWindow(sent, stressPeriod)
}

// timeline writes, for each replica, the requests it sent in each 100 ms
// of the run: where a worst window came from.
func (f fleetRun) timeline() string {
	var b strings.Builder
	for i, r := range f.results {
		buckets := make([]int, (stressRun+time.Second)/(100*time.Millisecond))
		for _, tm := range r.Sent {
			if k := int(tm.Sub(f.start) / (100 * time.Millisecond)); k >= 0 && k < len(buckets) {
				buckets[k]++
			}
		}
		fmt.Fprintf(&b, "replica %d, per 100 ms:", i)
		for _, c := range buckets {
			fmt.Fprintf(&b, " %d", c)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// worstArrived is the most requests the fake saw arrive within one period.
func (f fleetRun) worstArrived() int { return maxInWindow(f.reqs, stressPeriod) }

func (f fleetRun) commandsPerGrant() float64 {
	var cmds, grants int64
	for _, r := range f.results {
		cmds += r.Commands
		grants += r.Grants
	}
	return float64(cmds) / float64(max(grants, 1))
}

func (f fleetRun) logs() string {
	var b strings.Builder
	for i, r := range f.results {
		fmt.Fprintf(&b, "replica %d:\n%s", i, r.Logs)
	}
	return b.String()
}

// runFleet runs replicas 4 x 200 callers, the i-th talking to addrs[i],
// and calls during(start) in the parent while they run.
func runFleet(t *testing.T, addrs []string, cache bool, during func(start time.Time)) fleetRun {
	t.Helper()
	fake := wxacodetest.NewServer(wxacodetest.WithMinuteQuota(1 << 30))
	t.Cleanup(fake.Close)
	// The fake draws an image the first time it is asked for one of its
	// size and colour: drawn now, it does not delay the run's first
	// requests (which would arrive bunched, whatever the Limiter did).
	warm := wxacode.NewClient(wxacode.StaticToken(fake.Token()), wxacode.WithBaseURL(fake.URL))
	if _, err := warm.GetUnlimited(context.Background(), wxacode.Request{Scene: "warm-up"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	start := time.Now().Add(2 * time.Second) // every child is up by then
	var fleet []replica
	for i, addr := range addrs {
		fleet = append(fleet, replica{Mode: "stress", Redis: addr, API: fake.URL, AppID: fake.AppID(), Token: fake.Token(),
			N: stressN, Period: stressPeriod, Start: start, End: start.Add(stressRun), Workers: 200, Cache: cache,
			Name: "r" + strconv.Itoa(i) + "-", Out: filepath.Join(dir, strconv.Itoa(i)+".json")})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if during != nil {
			during(start)
		}
	}()
	runReplicas(t, fleet...)
	<-done
	run := fleetRun{start: start}
	for _, r := range fake.Requests() {
		if !r.Time.Before(start) {
			run.reqs = append(run.reqs, r)
		}
	}
	for _, r := range fleet {
		var res stressResult
		b, err := os.ReadFile(r.Out)
		if err == nil {
			err = json.Unmarshal(b, &res)
		}
		if err != nil {
			t.Fatalf("replica %s: %v", r.Name, err)
		}
		run.results = append(run.results, res)
	}
	t.Logf("%d requests in %v, worst %v window %d sent (%d arrived; n + burst = %d), %.2f Redis commands a grant",
		len(run.reqs), stressRun, stressPeriod, run.worst(), run.worstArrived(), stressN+stressBurst, run.commandsPerGrant())
	return run
}

// wantWorst fails t when the worst window is over limit, or when the run
// used well under the quota (a limiter that grants nothing keeps any
// bound).
func wantWorst(t *testing.T, run fleetRun, limit int) {
	t.Helper()
	if got := run.worst(); got > limit {
		t.Errorf("%d requests sent within one %v window, want at most %d\n%s%s", got, stressPeriod, limit, run.timeline(), run.logs())
	}
	// Half a period's quota in the whole run: a busy two-core machine running
	// five processes under the race detector mints slowly (each code costs
	// the cache a few commands and the fake a drawing), but a Limiter that
	// grants nothing fails here.
	if min := stressN / 2; len(run.reqs) < min {
		t.Errorf("%d requests in %v, want at least %d: the quota is not used", len(run.reqs), stressRun, min)
	}
}

func repeat(addr string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = addr
	}
	return out
}

// TestStressHealthy: 4 x 200 callers on a healthy local Redis keep to
// n + burst and cost at most 2 Redis commands a grant: waiting callers
// never poll.
func TestStressHealthy(t *testing.T) {
	rs := startRedis(t)
	run := runFleet(t, repeat(rs.addr, 4), false, nil)
	wantWorst(t, run, stressN+stressBurst)
	if got := run.commandsPerGrant(); got > 2 {
		t.Errorf("%.2f Redis commands a grant, want at most 2", got)
	}
	if strings.Contains(run.logs(), "WARN") || strings.Contains(run.logs(), "ERROR") {
		t.Errorf("a healthy Redis was taken for a failing one:\n%s", run.logs())
	}
}

// TestStressSlowRedis: a Redis that answers 50 ms late is slow, not down:
// no replica falls back, and the fleet keeps to n + burst.
func TestStressSlowRedis(t *testing.T) {
	rs := startRedis(t)
	var addrs []string
	for range 4 {
		p := startProxy(t, rs.addr)
		p.setDelay(50 * time.Millisecond)
		addrs = append(addrs, p.addr)
	}
	run := runFleet(t, addrs, false, nil)
	wantWorst(t, run, stressN+stressBurst)
	if strings.Contains(run.logs(), "not answering") {
		t.Errorf("a Redis 50 ms late was taken for a dead one:\n%s", run.logs())
	}
}

// TestStressFullRedis: the README's setup (limiter and cache on one Redis)
// with Redis full under the default noeviction policy: the limiter still
// writes its key, and the fleet keeps to n + burst.
func TestStressFullRedis(t *testing.T) {
	rs := startRedis(t, "--maxmemory", "8mb", "--maxmemory-policy", "noeviction")
	fillRedis(t, rs.addr)
	run := runFleet(t, repeat(rs.addr, 4), true, nil)
	wantWorst(t, run, stressN+stressBurst)
	// The limiter never falls back for a full Redis. (The cache's 250 ms
	// bound may pass on a machine starved by the race detector and busy
	// loops, a pause of the cache alone; that OOM is no outage for the
	// cache is TestCacheReadsWhenRedisIsFull's.)
	if strings.Contains(run.logs(), "Redis is not answering; the limiter") {
		t.Errorf("a full Redis was taken for a dead one:\n%s", run.logs())
	}
}

// fillRedis writes junk into Redis until it refuses writes (OOM).
func fillRedis(t *testing.T, addr string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	junk := strings.Repeat("x", 64<<10)
	for i := 0; ; i++ {
		err := rdb.Set(context.Background(), "junk:"+strconv.Itoa(i), junk, 0).Err()
		if err != nil {
			if !strings.HasPrefix(err.Error(), "OOM") {
				t.Fatalf("filling Redis: %v", err)
			}
			return
		}
		if i > 10000 {
			t.Fatal("Redis never filled up: is maxmemory set?")
		}
	}
}

// TestStressPartition: 2 of 4 replicas lose Redis mid-run (it stops
// answering them, as a partition does); each of those paces itself to its
// share, so the fleet sends at most 1.7 x (n + burst) in a window.
func TestStressPartition(t *testing.T) {
	rs := startRedis(t)
	p0, p1 := startProxy(t, rs.addr), startProxy(t, rs.addr)
	run := runFleet(t, []string{p0.addr, p1.addr, rs.addr, rs.addr}, false, func(start time.Time) {
		time.Sleep(time.Until(start.Add(1500 * time.Millisecond)))
		p0.blackHole()
		p1.blackHole()
	})
	wantWorst(t, run, (stressN+stressBurst)*17/10)
	wantFellBack(t, run, 2)
}

// TestStressFrozenRedis: Redis frozen (SIGSTOP) for 2 s mid-run: every
// replica paces itself to its share, after the turns it was granted, so
// the fleet sends at most 1.3 x (n + burst) in a window.
func TestStressFrozenRedis(t *testing.T) {
	rs := startRedis(t)
	run := runFleet(t, repeat(rs.addr, 4), false, func(start time.Time) {
		time.Sleep(time.Until(start.Add(1200 * time.Millisecond)))
		rs.stop(t)
		time.Sleep(2 * time.Second)
		rs.cont(t)
	})
	wantWorst(t, run, (stressN+stressBurst)*13/10)
	wantFellBack(t, run, 1)
}

// TestStressRestartedRedis: Redis restarts mid-run and comes back empty
// (no persistence): the quota's state and the scripts are gone. The
// replicas pace themselves to their shares meanwhile, after the turns
// already reserved, and keep to them for a grace after it answers, so the
// fleet sends at most 1.3 x (n + burst) in a window.
func TestStressRestartedRedis(t *testing.T) {
	rs := startRedis(t)
	var restartErr error
	run := runFleet(t, repeat(rs.addr, 4), false, func(start time.Time) {
		time.Sleep(time.Until(start.Add(1200 * time.Millisecond)))
		restartErr = rs.restart(time.Second)
	})
	if restartErr != nil {
		t.Fatal(restartErr)
	}
	wantWorst(t, run, (stressN+stressBurst)*13/10)
	wantFellBack(t, run, 1)
}

// TestOneCodeAtTheSameMoment: 8 replicas x 10 callers ask for one code at
// the same moment: one API call in the fleet, and every replica holds the
// same bytes.
func TestOneCodeAtTheSameMoment(t *testing.T) {
	rs := startRedis(t)
	fake := wxacodetest.NewServer(wxacodetest.WithLatency(100 * time.Millisecond))
	t.Cleanup(fake.Close)
	dir := t.TempDir()
	start := time.Now().Add(2 * time.Second)
	var fleet []replica
	for i := range 8 {
		fleet = append(fleet, replica{Mode: "code", Redis: rs.addr, API: fake.URL, AppID: fake.AppID(), Token: fake.Token(),
			Scene: "id=42", Callers: 10, Start: start, Out: filepath.Join(dir, strconv.Itoa(i))})
	}
	runReplicas(t, fleet...)
	if got := len(fake.Requests()); got != 1 {
		t.Errorf("%d API calls for one code asked by 8 replicas at once, want 1", got)
	}
	want, err := os.ReadFile(fleet[0].Out)
	if err != nil {
		t.Fatal(err)
	}
	if scene, _ := wxacodetest.ReadScene(want); scene != "id=42" {
		t.Errorf("the image is for scene %q", scene)
	}
	for _, r := range fleet[1:] {
		if got, err := os.ReadFile(r.Out); err != nil || string(got) != string(want) {
			t.Errorf("%s: %d bytes, %v; want the same image in every replica", r.Out, len(got), err)
		}
	}
}

// TestCacheReadsWhenRedisIsFull: a Put refused because Redis is full
// (noeviction) is a failed write, not an outage: the codes Redis holds are
// still served, without a call.
func TestCacheReadsWhenRedisIsFull(t *testing.T) {
	rs := startRedis(t, "--maxmemory", "8mb", "--maxmemory-policy", "noeviction")
	fake := wxacodetest.NewServer()
	t.Cleanup(fake.Close)
	rdb, _ := newRDB(t, rs.addr)
	logger, logs := jsonLogger()
	client := wxacode.NewClient(wxacode.StaticToken(fake.Token()), wxacode.WithBaseURL(fake.URL),
		wxacode.WithCache(NewCache(rdb, fake.AppID(), WithLogger(logger))))
	ctx := context.Background()
	for i := range 20 {
		if _, err := client.GetUnlimited(ctx, wxacode.Request{Scene: "stored" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	fillRedis(t, rs.addr)
	fake.ForgetRequests()
	asks := 0
	for round := range 64 {
		// a new code (its Put is refused), then a stored one (a hit)
		if _, err := client.GetUnlimited(ctx, wxacode.Request{Scene: "new" + strconv.Itoa(round)}); err != nil {
			t.Fatal(err)
		}
		if _, err := client.GetUnlimited(ctx, wxacode.Request{Scene: "stored" + strconv.Itoa(round%20)}); err != nil {
			t.Fatal(err)
		}
		asks += 2
	}
	if got := len(fake.Requests()); got != 64 {
		t.Errorf("%d API calls for %d asks (64 new codes, 64 asks of stored ones), want 64: a full Redis stopped the reads", got, asks)
	}
	if got := strings.Count(logs.String(), `"kind":"OOM"`); got != 1 {
		t.Errorf("the refused writes were logged %d times, want once:\n%s", got, logs)
	}
}

// TestWrongPasswordIsNotAnOutage: a wrong password is said in the first
// log line, at Error, in Redis's own words, not as "not answering".
func TestWrongPasswordIsNotAnOutage(t *testing.T) {
	rs := startRedis(t, "--requirepass", "right")
	for _, pw := range []string{"wrong", ""} {
		t.Run("password="+pw, func(t *testing.T) {
			rdb := redis.NewClient(&redis.Options{Addr: rs.addr, Password: pw})
			t.Cleanup(func() { _ = rdb.Close() })
			logger, logs := jsonLogger()
			l := NewLimiter(rdb, "wxapp", 1000, time.Second, WithLogger(logger))
			c := NewCache(rdb, "wxapp", WithLogger(logger))
			for range 5 {
				if err := l.Wait(context.Background()); err != nil {
					t.Fatal(err)
				}
				_, _, _ = c.Get(context.Background(), "k")
			}
			first, _, _ := strings.Cut(logs.String(), "\n")
			if !strings.Contains(first, `"level":"ERROR"`) || !(strings.Contains(first, "WRONGPASS") || strings.Contains(first, "NOAUTH")) {
				t.Errorf("first log line %s; want an Error with Redis's WRONGPASS or NOAUTH", first)
			}
			if strings.Contains(logs.String(), "not answering") {
				t.Errorf("a wrong password reported as an outage:\n%s", logs)
			}
			if got := strings.Count(logs.String(), "\n"); got > 2 {
				t.Errorf("%d log lines for 5 calls, want one per kind of error:\n%s", got, logs)
			}
		})
	}
}

// wantFellBack checks that at least k replicas saw Redis stop answering:
// else the run did not test the fallback.
func wantFellBack(t *testing.T, run fleetRun, k int) {
	t.Helper()
	n := 0
	for _, r := range run.results {
		if strings.Contains(r.Logs, "not answering") {
			n++
		}
	}
	if n < k {
		t.Errorf("%d replicas lost Redis, want at least %d: the fallback was not tested\n%s", n, k, run.logs())
	}
}
