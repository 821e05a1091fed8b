package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/go-wxacode/wxacode/wxacodetest"
)

const fakeHelp = `Usage: wxacode fake [-addr 127.0.0.1:8080] [flags]

Serves the fake WeChat API of package wxacodetest on -addr until SIGINT or
SIGTERM, then exits 0: the token endpoints (/cgi-bin/token,
/cgi-bin/stable_token) and /wxa/getwxacodeunlimit, with the documented
rules and error codes, and images that carry the scene they were made for.
Point a service under test (in any language) at the URL it prints.

The first line on standard error is
  wxacode fake: listening on http://HOST:PORT (appid APPID, secret SECRET)
with the real port (-addr :0 picks a free one; an address without a host
listens on every interface and prints the loopback URL). Nothing else is
printed unless -v: then one line per request (time, path, scene, errcode).

Control endpoints, JSON in and out, under a path the real API never uses:
  POST   /wxacodetest/fail-next      {"n": 2, "errcode": 45009}: the next n
                                     getwxacodeunlimit calls answer errcode
  DELETE /wxacodetest/fail-next      forget the calls queued to fail
  GET    /wxacodetest/requests       the recorded calls, oldest first
  DELETE /wxacodetest/requests       forget them
  POST   /wxacodetest/advance        {"seconds": 7200}: move the fake's clock
                                     (at most 100 years ahead in all)
  POST   /wxacodetest/expire-tokens  every issued token answers 42001
  POST   /wxacodetest/read           an image as the body: {"scene", "page",
                                     "env_version"} it was made for
  GET    /wxacodetest/token          {"access_token": …}, a valid token
A malformed control request answers 400 {"error": "…"}; any other path
under /wxacodetest, in any case or with extra slashes, answers a JSON 404
or 405.

The secret is a test fixture, not a credential: -secret may name it on the
command line. Exit codes: 0 stopped by SIGINT or SIGTERM; 2 bad flags or an
address that cannot be listened on.

Examples:
  wxacode fake -addr :0 -quota 0
  wxacode fake -addr 0.0.0.0:8080 -pages pages/index/index,pages/item/index -latency 50ms

Flags:
`

// fake runs "wxacode fake".
func (a *app) fake(ctx context.Context, args []string) int {
	const cmd = "wxacode fake"
	fs := newFlagSet("fake")
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on; :0 picks a free port")
	appID := fs.String("appid", "", "the AppID the token endpoints accept (default wx0000000000fake01)")
	secret := fs.String("secret", "", "the AppSecret they accept (default: random, printed at start)")
	quota := fs.Int("quota", 5000, "getwxacodeunlimit calls a minute before 45009, as the service's; 0 means none")
	latency := fs.Duration("latency", 0, "delay every answer by this much")
	pages := fs.String("pages", "", "comma-separated published pages; with check_path, any other page answers 41030 (default: every page)")
	textPlain := fs.Bool("text-plain-errors", false, `send JSON errors as "text/plain", as older deployments did`)
	openAPI := fs.Bool("open-api", false, "act as Cloud Run's open-API service: calls without a token are accepted")
	cloudbase := fs.Bool("cloudbase-tokens", false, "take the token from cloudbase_access_token (Cloud Run's WeChat token)")
	verbose := fs.Bool("v", false, "print one line per request: time, path, scene, errcode")
	if code, stop := a.parse(fs, args, fakeHelp); stop {
		return code
	}
	if *quota < 0 || *latency < 0 {
		return a.usageError(cmd, errors.New("-quota and -latency must not be negative"))
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return a.usageError(cmd, fmt.Errorf("-addr %s: %w", *addr, err))
	}
	opts := []wxacodetest.ServerOption{wxacodetest.WithListener(l), wxacodetest.WithMinuteQuota(*quota)}
	if *appID != "" || *secret != "" {
		opts = append(opts, wxacodetest.WithCredentials(*appID, *secret)) // "" keeps the default
	}
	if *latency > 0 {
		opts = append(opts, wxacodetest.WithLatency(*latency))
	}
	if *pages != "" {
		opts = append(opts, wxacodetest.WithPublishedPages(strings.Split(*pages, ",")...))
	}
	if *textPlain {
		opts = append(opts, wxacodetest.WithTextPlainErrors())
	}
	if *openAPI {
		opts = append(opts, wxacodetest.WithOpenAPIService())
	}
	if *cloudbase {
		opts = append(opts, wxacodetest.WithCloudbaseTokens())
	}
	ctl := &fakeControl{ready: make(chan struct{})}
	if *verbose {
		ctl.log = a.stderr
	}
	opts = append(opts, wxacodetest.WithMiddleware(ctl.wrap))
	srv := wxacodetest.NewServer(opts...)
	ctl.srv = srv
	close(ctl.ready)
	fmt.Fprintf(a.stderr, "%s: listening on %s (appid %s, secret %s)\n", cmd, srv.URL, srv.AppID(), srv.AppSecret())
	<-ctx.Done()
	srv.Close()
	return exitOK
}

// fakeControl answers the /wxacodetest/ control endpoints and, with -v,
// logs the API's requests.
type fakeControl struct {
	srv   *wxacodetest.Server // set once the server exists, then ready is closed
	ready chan struct{}       // a control request that comes sooner waits for it
	log   io.Writer           // nil: no request log
	mu    sync.Mutex          // one log line at a time

	advanceMu sync.Mutex
	advanced  time.Duration // how far advance moved the clock, at most maxAdvance
}

// maxAdvance is how far the advance endpoint moves the fake's clock in all.
const maxAdvance = 100 * 365 * 24 * time.Hour

// wrap is the fake's middleware.
func (c *fakeControl) wrap(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /wxacodetest/fail-next", c.failNext)
	mux.HandleFunc("DELETE /wxacodetest/fail-next", c.forgetFailures)
	mux.HandleFunc("GET /wxacodetest/requests", c.requests)
	mux.HandleFunc("DELETE /wxacodetest/requests", c.forget)
	mux.HandleFunc("POST /wxacodetest/advance", c.advance)
	mux.HandleFunc("POST /wxacodetest/expire-tokens", c.expireTokens)
	mux.HandleFunc("POST /wxacodetest/read", c.read)
	mux.HandleFunc("GET /wxacodetest/token", c.token)
	// Whatever else is under /wxacodetest/: a JSON 405 or 404, never the
	// mux's plain text.
	mux.HandleFunc("/wxacodetest/", func(w http.ResponseWriter, r *http.Request) {
		if allow := controlMethods(r.URL.Path); allow != "" {
			w.Header().Set("Allow", allow)
			ctlError(w, http.StatusMethodNotAllowed, r.Method+" "+r.URL.Path+" is not allowed: use "+allow)
			return
		}
		ctlError(w, http.StatusNotFound, noControl(r.URL.Path))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/wxacodetest/") && path.Clean(r.URL.Path) == r.URL.Path {
			<-c.ready
			mux.ServeHTTP(w, r)
			return
		}
		// A control path in another case, or with extra or trailing
		// slashes: a JSON 404 naming the path meant, never the API's (or
		// the mux's redirect to a cleaned path).
		if clean := strings.ToLower(path.Clean("/" + r.URL.Path)); clean == "/wxacodetest" || strings.HasPrefix(clean, "/wxacodetest/") {
			ctlError(w, http.StatusNotFound, noControl(r.URL.Path))
			return
		}
		if c.log == nil {
			api.ServeHTTP(w, r)
			return
		}
		c.logged(api, w, r)
	})
}

// noControl says that p is no control endpoint, naming the one meant when
// p differs from it only in case or slashes.
func noControl(p string) string {
	if clean := strings.ToLower(path.Clean("/" + p)); controlMethods(clean) != "" {
		return "no control endpoint " + p + ": did you mean " + clean + "?"
	}
	return "no control endpoint " + p + " (see wxacode fake -h)"
}

// controlMethods returns the methods a control path takes, or "".
func controlMethods(path string) string {
	switch path {
	case "/wxacodetest/advance", "/wxacodetest/expire-tokens", "/wxacodetest/read":
		return "POST"
	case "/wxacodetest/fail-next":
		return "POST, DELETE"
	case "/wxacodetest/requests":
		return "GET, DELETE"
	case "/wxacodetest/token":
		return "GET"
	}
	return ""
}

// logged serves r with api and logs one line: time, path, scene, errcode.
func (c *fakeControl) logged(api http.Handler, w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	var in struct {
		Scene any `json:"scene"`
	}
	_ = json.Unmarshal(body, &in)
	rec := &answerRecorder{ResponseWriter: w}
	api.ServeHTTP(rec, r)
	errcode := 0
	if b := bytes.TrimSpace(rec.head.Bytes()); len(b) > 0 && b[0] == '{' {
		var out struct {
			ErrCode int `json:"errcode"`
		}
		_ = json.Unmarshal(b, &out)
		errcode = out.ErrCode
	}
	scene := ""
	if in.Scene != nil {
		scene = fmt.Sprint(in.Scene)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.log, "%s %s %s scene=%q errcode=%d\n", time.Now().Format("2006-01-02T15:04:05.000Z07:00"), r.Method, r.URL.Path, scene, errcode)
}

// answerRecorder keeps the first bytes of an answer, for the log.
type answerRecorder struct {
	http.ResponseWriter
	head bytes.Buffer
}

func (a *answerRecorder) Write(p []byte) (int, error) {
	if room := 4096 - a.head.Len(); room > 0 {
		a.head.Write(p[:min(len(p), room)])
	}
	return a.ResponseWriter.Write(p)
}

// Flush passes a flush on, so that WithLatency and streaming still work.
func (a *answerRecorder) Flush() {
	if f, ok := a.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// maxControlBody caps a control request's body; an image to read is the
// largest (the fake's are under 1 MiB).
const maxControlBody = 8 << 20

// decodeControl reads r's JSON body into v: one object, no unknown
// fields, nothing after it.
func decodeControl(r *http.Request, v any) error {
	d := json.NewDecoder(io.LimitReader(r.Body, maxControlBody))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("the body is empty: want a JSON object")
		}
		return fmt.Errorf("the body is not the JSON object wanted: %v", err)
	}
	if d.More() {
		return errors.New("the body holds more than one JSON value")
	}
	return nil
}

func ctlJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func ctlError(w http.ResponseWriter, status int, msg string) {
	ctlJSON(w, status, map[string]string{"error": msg})
}

// ctlOK answers {"ok": true}.
func ctlOK(w http.ResponseWriter) {
	ctlJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func (c *fakeControl) failNext(w http.ResponseWriter, r *http.Request) {
	var in struct {
		N       *int `json:"n"`
		ErrCode *int `json:"errcode"`
	}
	if err := decodeControl(r, &in); err != nil {
		ctlError(w, http.StatusBadRequest, err.Error())
		return
	}
	switch {
	case in.N == nil || *in.N < 1 || *in.N > 1_000_000:
		ctlError(w, http.StatusBadRequest, `"n" must be a whole number from 1 to 1000000`)
		return
	case in.ErrCode == nil || *in.ErrCode == 0:
		ctlError(w, http.StatusBadRequest, `"errcode" must be a non-zero errcode, such as 45009`)
		return
	}
	c.srv.FailNext(*in.N, *in.ErrCode)
	ctlOK(w)
}

func (c *fakeControl) requests(w http.ResponseWriter, r *http.Request) {
	out := []wxacodetest.Request{} // [] rather than null when there are none
	for _, q := range c.srv.Requests() {
		q.Token, q.Query = "", "" // the control endpoint shows what was asked, not with what
		out = append(out, q)
	}
	ctlJSON(w, http.StatusOK, out)
}

func (c *fakeControl) forget(w http.ResponseWriter, r *http.Request) {
	c.srv.ForgetRequests()
	ctlOK(w)
}

func (c *fakeControl) advance(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Seconds *float64 `json:"seconds"`
	}
	if err := decodeControl(r, &in); err != nil {
		ctlError(w, http.StatusBadRequest, err.Error())
		return
	}
	// Up to ten years a call, and a hundred in all: more means a typo,
	// and repeated calls must not run the clock past what time.Duration
	// holds.
	if in.Seconds == nil || *in.Seconds < 0 || *in.Seconds > 10*365*24*3600 {
		ctlError(w, http.StatusBadRequest, `"seconds" must be a number from 0 to 315360000`)
		return
	}
	d := time.Duration(*in.Seconds * float64(time.Second))
	c.advanceMu.Lock()
	defer c.advanceMu.Unlock()
	if c.advanced+d > maxAdvance {
		ctlError(w, http.StatusBadRequest, fmt.Sprintf("the fake's clock is %.0f seconds ahead; at most 100 years ahead in all", c.advanced.Seconds()))
		return
	}
	c.advanced += d
	c.srv.Advance(d)
	ctlJSON(w, http.StatusOK, map[string]string{"now": c.srv.Now().Format(time.RFC3339Nano)})
}

func (c *fakeControl) forgetFailures(w http.ResponseWriter, r *http.Request) {
	c.srv.ForgetFailures()
	ctlOK(w)
}

func (c *fakeControl) expireTokens(w http.ResponseWriter, r *http.Request) {
	c.srv.ExpireTokens()
	ctlOK(w)
}

func (c *fakeControl) read(w http.ResponseWriter, r *http.Request) {
	img, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody+1))
	switch {
	case err != nil:
		ctlError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	case len(img) > maxControlBody:
		ctlError(w, http.StatusBadRequest, "the body is over 8 MiB: not an image of the fake's")
		return
	}
	code, err := wxacodetest.ReadCode(img)
	if err != nil {
		ctlError(w, http.StatusBadRequest, "not an image the fake made: "+strings.TrimPrefix(err.Error(), "wxacodetest: "))
		return
	}
	ctlJSON(w, http.StatusOK, code)
}

func (c *fakeControl) token(w http.ResponseWriter, r *http.Request) {
	ctlJSON(w, http.StatusOK, map[string]string{"access_token": c.srv.Token()})
}
