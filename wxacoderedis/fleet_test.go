package wxacoderedis

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-wxacode/wxacode"
	"github.com/go-wxacode/wxacode/wxacodetest"
	"github.com/redis/go-redis/v9"
)

// A replica is this test binary run again as a child process (the os/exec
// helper-process pattern): TestReplica does the work its environment
// describes, and the parent asserts on what the fake and Redis saw.

// replica describes one child's work; it travels as JSON in
// WXACODEREDIS_REPLICA.
type replica struct {
	Mode      string // "quota", "code", "token" or "stress"
	Redis     string
	Password  string // Redis's
	API       string // the fake's URL
	AppID     string
	Secret    string
	Token     string
	N         int
	Period    time.Duration
	Start     time.Time // "quota": begin here, all together
	End       time.Time // "quota": stop sending here
	Workers   int       // "quota": goroutines calling in a loop
	Every     time.Duration
	Name      string // "quota": scene prefix
	Scene     string // "code": the code to get
	Callers   int    // "code": concurrent callers of it
	Out       string // "code": where to write the image; "stress": the result
	Cache     bool   // "stress": use a Cache on the same Redis too
	Calls     int    // "token": calls to make
	SceneBase string // "token": scene prefix
}

// runReplicas runs the children and waits for them; a child that fails
// fails the test with its output.
func runReplicas(t *testing.T, rs ...replica) {
	t.Helper()
	var wg sync.WaitGroup
	for i, r := range rs {
		spec, _ := json.Marshal(r)
		cmd := exec.Command(os.Args[0], "-test.run=^TestReplica$", "-test.count=1")
		cmd.Env = append(os.Environ(), "WXACODEREDIS_REPLICA="+string(spec))
		cmd.SysProcAttr = childAttr()
		wg.Go(func() {
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("replica %d (%s): %v\n%s", i, r.Mode, err, out)
			}
		})
	}
	wg.Wait()
}

// TestReplica is a child's body; it does nothing in a normal run.
func TestReplica(t *testing.T) {
	spec := os.Getenv("WXACODEREDIS_REPLICA")
	if spec == "" {
		t.Skip("runs only as a child of the fleet tests")
	}
	var r replica
	if err := json.Unmarshal([]byte(spec), &r); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: r.Redis})
	defer rdb.Close()
	ctx := context.Background()
	switch r.Mode {
	case "quota":
		client := wxacode.NewClient(wxacode.StaticToken(r.Token), wxacode.WithBaseURL(r.API),
			wxacode.WithLimiter(NewLimiter(rdb, r.AppID, r.N, r.Period)))
		time.Sleep(time.Until(r.Start))
		ctx, cancel := context.WithDeadline(ctx, r.End)
		defer cancel()
		var wg sync.WaitGroup
		for w := range r.Workers {
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					_, err := client.GetUnlimited(ctx, wxacode.Request{Scene: fmt.Sprintf("%s%d-%d", r.Name, w, i)})
					if err != nil && ctx.Err() == nil {
						t.Errorf("GetUnlimited: %v", err)
					}
					if r.Every > 0 && wxaSleep(ctx, r.Every) != nil {
						return
					}
				}
			})
		}
		wg.Wait()
	case "code":
		client := wxacode.NewClient(wxacode.StaticToken(r.Token), wxacode.WithBaseURL(r.API),
			wxacode.WithCache(NewCache(rdb, r.AppID)))
		time.Sleep(time.Until(r.Start)) // all together, when Start is set
		var wg sync.WaitGroup
		imgs := make([][]byte, max(r.Callers, 1))
		for i := range imgs {
			wg.Go(func() {
				img, err := client.GetUnlimited(ctx, wxacode.Request{Scene: r.Scene})
				if err != nil {
					t.Errorf("GetUnlimited: %v", err)
				}
				imgs[i] = img
			})
		}
		wg.Wait()
		if err := os.WriteFile(r.Out, imgs[0], 0o644); err != nil {
			t.Fatal(err)
		}
	case "token":
		ts := wxacode.NewStableTokenSource(r.AppID, r.Secret, wxacode.WithBaseURL(r.API))
		client := wxacode.NewClient(ts, wxacode.WithBaseURL(r.API))
		for i := range r.Calls {
			if _, err := client.GetUnlimited(ctx, wxacode.Request{Scene: r.SceneBase + strconv.Itoa(i)}); err != nil {
				t.Errorf("GetUnlimited: %v", err)
			}
		}
	case "stress":
		runStressReplica(t, r)
	default:
		t.Fatalf("unknown mode %q", r.Mode)
	}
}

// wxaSleep sleeps d or until ctx ends.
func wxaSleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// maxInWindow returns the most requests that arrived within any window of
// length d.
func maxInWindow(reqs []wxacodetest.Request, d time.Duration) int {
	most := 0
	for i := range reqs {
		n := 0
		for j := i; j < len(reqs) && reqs[j].Time.Sub(reqs[i].Time) < d; j++ {
			n++
		}
		most = max(most, n)
	}
	return most
}

// TestOneQuotaAcrossProcesses: four processes, one busy and three nearly
// idle, together never exceed n + burst in any window of the period, and
// the busy one takes what the others leave.
func TestOneQuotaAcrossProcesses(t *testing.T) {
	rs := startRedis(t)
	fake := wxacodetest.NewServer()
	t.Cleanup(fake.Close)
	const (
		n      = 20
		period = 2 * time.Second
		burst  = 1 // max(1, ceil(20/60))
		run    = 5 * time.Second
	)
	start := time.Now().Add(1500 * time.Millisecond) // every child is up by then
	base := replica{Mode: "quota", Redis: rs.addr, API: fake.URL, AppID: fake.AppID(), Token: fake.Token(), N: n, Period: period, Start: start, End: start.Add(run)}
	busy := base
	busy.Name, busy.Workers = "busy", 8
	var fleet []replica
	fleet = append(fleet, busy)
	for i := range 3 {
		idle := base
		idle.Name, idle.Workers, idle.Every = "idle"+strconv.Itoa(i)+"-", 1, 700*time.Millisecond
		fleet = append(fleet, idle)
	}
	runReplicas(t, fleet...)

	reqs := fake.Requests()
	if worst := maxInWindow(reqs, period); worst > n+burst {
		t.Errorf("%d requests within one %v window, want at most %d", worst, period, n+burst)
	}
	// The whole rate is used: burst + n per period over the run.
	want := burst + int(float64(n)*run.Seconds()/period.Seconds())
	busyCalls := 0
	for _, r := range reqs {
		if strings.HasPrefix(r.Scene, "busy") {
			busyCalls++
		}
	}
	if len(reqs) < want*8/10 || len(reqs) > want+1 {
		t.Errorf("%d requests in %v, want about %d: the shared rate is not used", len(reqs), run, want)
	}
	if fair := want / len(fleet); busyCalls < 2*fair {
		t.Errorf("the busy replica sent %d of %d, want well over its even share %d", busyCalls, len(reqs), fair)
	}
	t.Logf("4 replicas, %d per %v: %d requests (busy %d), worst window %d", n, period, len(reqs), busyCalls, maxInWindow(reqs, period))
}

// TestOneCodeMintedOnceInTheFleet: a code minted by one process is served
// to every other from Redis, byte for byte, without a call; within one
// process concurrent callers still share one call.
func TestOneCodeMintedOnceInTheFleet(t *testing.T) {
	rs := startRedis(t)
	fake := wxacodetest.NewServer()
	t.Cleanup(fake.Close)
	dir := t.TempDir()
	base := replica{Mode: "code", Redis: rs.addr, API: fake.URL, AppID: fake.AppID(), Token: fake.Token(), Scene: "id=42", Callers: 50}
	first := base
	first.Out = filepath.Join(dir, "first")
	runReplicas(t, first)
	if got := len(fake.Requests()); got != 1 {
		t.Fatalf("50 callers in one process made %d calls, want 1", got)
	}
	var others []replica
	for i := range 3 {
		o := base
		o.Out = filepath.Join(dir, "other"+strconv.Itoa(i))
		others = append(others, o)
	}
	runReplicas(t, others...)
	if got := len(fake.Requests()); got != 1 {
		t.Errorf("%d calls in the fleet for one code, want 1", got)
	}
	want, err := os.ReadFile(first.Out)
	if err != nil {
		t.Fatal(err)
	}
	if scene, _ := wxacodetest.ReadScene(want); scene != "id=42" {
		t.Errorf("the first image is for scene %q", scene)
	}
	for _, o := range others {
		got, err := os.ReadFile(o.Out)
		if err != nil || string(got) != string(want) {
			t.Errorf("%s: %d bytes, %v; want the first process's image byte for byte", o.Out, len(got), err)
		}
	}
}

// TestTokensAcrossProcesses: each replica's own StableTokenSource gets the
// same stable_token token; N replicas make at most N token requests while
// it lives. No token store is shared.
func TestTokensAcrossProcesses(t *testing.T) {
	fake := wxacodetest.NewServer()
	t.Cleanup(fake.Close)
	const replicas = 4
	var fleet []replica
	for i := range replicas {
		fleet = append(fleet, replica{Mode: "token", Redis: "127.0.0.1:1", API: fake.URL, AppID: fake.AppID(), Secret: fake.AppSecret(), Calls: 5, SceneBase: "r" + strconv.Itoa(i) + "-"})
	}
	runReplicas(t, fleet...)
	if got := fake.TokenRequests(); got > replicas {
		t.Errorf("%d token requests from %d replicas, want at most %d", got, replicas, replicas)
	}
	reqs := fake.Requests()
	if len(reqs) != replicas*5 {
		t.Fatalf("%d calls, want %d", len(reqs), replicas*5)
	}
	for _, r := range reqs {
		if r.Token != reqs[0].Token || r.ErrCode != 0 {
			t.Errorf("call %s sent token %q (errcode %d), want every replica on %q", r.Scene, r.Token, r.ErrCode, reqs[0].Token)
		}
	}
}
